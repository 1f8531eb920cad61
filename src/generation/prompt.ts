// A prompt as the model sees it: plain text encoded as it is (with the tokens the tokenizer adds,
// Llama's BOS), a message list rendered with the chat template and its generation prompt (the
// render writes its own special tokens). Data building, the local engine and `serve` agree here,
// so a prompt gives the same ids in-process and through an endpoint.
import type { Message } from "../text/chat-template.js";
import type { Tokenizer } from "../text/index.js";

export function promptIds(tokenizer: Tokenizer, prompt: string | Message[]): number[] {
  if (typeof prompt === "string") return tokenizer.encode(prompt);
  if (tokenizer.chatTemplate === undefined) {
    throw new Error(
      "a message list needs the model's chat template, and its tokenizer has none " +
        "(chat_template in tokenizer_config.json or chat_template.jinja)",
    );
  }
  const messages = prompt.map((m) => ({ ...m }));
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true }).ids;
}
