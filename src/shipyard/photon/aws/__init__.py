"""photon's AWS target: ECS Fargate behind an ALB (spec.py: what is asked; resources.py: the
calls; target.py: the orchestrated driver; native.py: ECS's own deployment strategies)."""
