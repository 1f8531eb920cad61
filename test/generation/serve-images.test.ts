// `omni-dpo serve` on a tiny Qwen2-VL, through the official openai client: a chat message with an
// image part (a data: URL, PNG or JPEG) is answered greedily as `omni-dpo generate --image` answers
// the same question about the same image file (streamed too); an image request and a text request sent together
// answer as they do alone (the image row prefilled on its own, then decoded with the other); remote
// URLs and undecodable images are refused with a 400 naming the field.
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { runCli, startServeProcess, type ServeProcess } from "../helpers/serving.js";
import { tempDir } from "../helpers/toy.js";
import { patternImage, solidImage, writeJpeg, writePng, writeTinyQwen2VL } from "../helpers/qwen2-vl.js";

const root = tempDir("omni-dpo-serve-images-");
const vl = writeTinyQwen2VL(11);
const png = writePng(join(root, "red.png"), solidImage(56, 84, [220, 20, 30]));
const jpeg = writeJpeg(join(root, "pattern.jpg"), patternImage(84, 56, 5));
const QUESTION = "What colour is this?";
const MAX_NEW = 8;
let served: ServeProcess;
let client: OpenAI;

before(async () => {
  served = await startServeProcess(["--model", vl.dir, "--name", "vl"]);
  client = new OpenAI({ baseURL: served.url, apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  await served?.stop();
  rmSync(root, { recursive: true, force: true });
  rmSync(vl.dir, { recursive: true, force: true });
});

const dataUrl = (file: string, mime: string) => `data:${mime};base64,${readFileSync(file).toString("base64")}`;

/** The answer of `generate --image FILE --prompt QUESTION` (greedy, MAX_NEW tokens). */
async function generated(file: string): Promise<{ completion: string; tokens: number }> {
  const args = ["generate", "--model", vl.dir, "--image", file, "--prompt", QUESTION];
  const r = await runCli([...args, "--max-new-tokens", String(MAX_NEW), "--json"]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { completion: string; tokens: number };
}

function ask(url: string) {
  return client.chat.completions.create({
    model: "vl",
    temperature: 0,
    max_tokens: MAX_NEW,
    messages: [
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url } },
          { type: "text", text: QUESTION },
        ],
      },
    ],
  });
}

test("serve: an image_url part (PNG, JPEG) is answered greedily as generate --image answers", async () => {
  const expected = await Promise.all([generated(png), generated(jpeg)]);
  assert.notEqual(expected[0].completion, expected[1].completion, "the two images should get different answers");
  const answers = [await ask(dataUrl(png, "image/png")), await ask(dataUrl(jpeg, "image/jpeg"))];
  answers.forEach((a, i) => {
    assert.equal(a.choices[0].message.content, expected[i].completion, `image ${i}`);
    assert.equal(a.usage?.completion_tokens, expected[i].tokens, `image ${i}`);
  });
  // Streamed: the chunks join to the same answer.
  const stream = await client.chat.completions.create({
    model: "vl",
    temperature: 0,
    max_tokens: MAX_NEW,
    stream: true,
    messages: [
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: dataUrl(png, "image/png") } },
          { type: "text", text: QUESTION },
        ],
      },
    ],
  });
  let streamed = "";
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(streamed, expected[0].completion);
  // Sent together with a text-only chat: each answers as it does alone.
  const text = () =>
    client.chat.completions.create({
      model: "vl",
      temperature: 0,
      max_tokens: MAX_NEW,
      messages: [{ role: "user", content: "Say something." }],
    });
  const alone = await text();
  const [image, chat] = await Promise.all([ask(dataUrl(png, "image/png")), text()]);
  assert.equal(image.choices[0].message.content, expected[0].completion);
  assert.equal(chat.choices[0].message.content, alone.choices[0].message.content);
});

test("serve: remote image URLs and undecodable images are refused with a 400 naming the field", async () => {
  const field = "messages[0].content[0].image_url.url";
  const cases: [string, RegExp][] = [
    ["https://example.com/cat.png", /not fetched/],
    ["data:image/png;base64,iVBORw0KGgo=", /PNG/i],
    ["data:text/plain;base64,aGk=", /data:image\/png;base64/],
  ];
  for (const [url, message] of cases) {
    await assert.rejects(ask(url), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      assert.equal(e.status, 400);
      assert.equal((e.error as { param?: string }).param, field, url);
      assert.match(e.message, message);
      return true;
    });
  }
});
