#!/usr/bin/env node
// Checks Vigie's Teams messages with Microsoft's Adaptive Cards library (npm `adaptivecards`):
// each is the workflow envelope around one Adaptive Card that parses with no warning (unknown
// element or property, bad value), validates, and stays under Teams' ~28 KB message limit.
//
// Reads a JSON array of message bodies on stdin. Prints {"messages": N, "elements": M} on
// success; exits 1 naming the first problem.
"use strict";
const AC = require("adaptivecards/dist/adaptivecards.js");

const MAX_BYTES = 28 * 1024;

function fail(message) {
  process.stderr.write(message + "\n");
  process.exit(1);
}

function count(elements) {
  let total = 0;
  for (const element of elements || []) {
    total += 1 + count(element.items);
  }
  return total;
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const messages = JSON.parse(input);
  let elements = 0;
  messages.forEach((message, index) => {
    const bytes = Buffer.byteLength(JSON.stringify(message));
    if (bytes > MAX_BYTES) fail(`message ${index}: ${bytes} bytes`);
    if (message.type !== "message" || !Array.isArray(message.attachments)) {
      fail(`message ${index}: not a workflow message envelope`);
    }
    if (message.attachments.length !== 1) fail(`message ${index}: ${message.attachments.length} attachments`);
    const attachment = message.attachments[0];
    if (attachment.contentType !== "application/vnd.microsoft.card.adaptive") {
      fail(`message ${index}: content type ${attachment.contentType}`);
    }
    const card = new AC.AdaptiveCard();
    const context = new AC.SerializationContext();
    card.parse(attachment.content, context);
    for (let i = 0; i < context.eventCount; i++) {
      fail(`message ${index}: ${context.getEventAt(i).message}`);
    }
    const validation = card.validateProperties();
    for (const event of validation.validationEvents || []) {
      fail(`message ${index}: ${event.message}`);
    }
    const parsed = count(card.toJSON().body);
    const sent = count(attachment.content.body);
    if (parsed !== sent) fail(`message ${index}: ${sent} elements sent, ${parsed} understood`);
    elements += parsed;
  });
  process.stdout.write(JSON.stringify({ messages: messages.length, elements }) + "\n");
});
