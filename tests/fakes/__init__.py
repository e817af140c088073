"""Local stand-ins for SaaS APIs we cannot run (only Slack so far): real HTTP servers on loopback."""
