// Invoke the jarvis Lambda from Node (AWS SDK for JavaScript v3).
//   npm install @aws-sdk/client-lambda
//   node examples/jarvis/invoke_lambda.mjs
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";

const lambda = new LambdaClient({ region: "ap-south-1" }); // credentials from the default chain

const payload = {
  heading: "Heading",
  message: "<!channel> Message",
  slack_channel: "slice-lambda-notifications",
  attachment: {
    bucket: "slack-notification-framework-attachments",
    key: "slice-lambda-notifications/test_file.csv",
  },
};

const out = await lambda.send(
  new InvokeCommand({
    FunctionName: "slice-slack-notifier",
    Payload: new TextEncoder().encode(JSON.stringify(payload)),
  }),
);
const result = JSON.parse(new TextDecoder().decode(out.Payload));
if (!result.ok) {
  // The error channel already has the report; result.hint says how to fix it.
  console.error(`jarvis: ${result.error}: ${result.message} (fix: ${result.hint})`);
  process.exitCode = 1;
} else {
  console.log(`posted to #${result.channel} at ${result.ts}`);
}
