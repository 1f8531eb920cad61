// Chat templates: ChatML (Qwen2), Llama 3 and Llama 2 render the strings Hugging Face renders.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ChatTemplateError, Tokenizer, renderChatTemplate, type ChatMessage } from "../../src/text/index.js";
import { pythonWith, skipUnless } from "../helpers/requirements.js";
import {
  CHATML_TEMPLATE,
  LLAMA2_TEMPLATE,
  LLAMA3_TEMPLATE,
  tempTokenizerDir,
  writeByteLevelTokenizer,
  writeLlama2Tokenizer,
  writeLlama3Tokenizer,
} from "../helpers/tokenizers.js";

const CONVERSATION: ChatMessage[] = [
  { role: "system", content: "You are a careful math tutor." },
  { role: "user", content: "What is 2 + 2?" },
  { role: "assistant", content: "2 + 2 = 4." },
];
const PROMPT = CONVERSATION.slice(0, 2);

let root: string;
let chatml: Tokenizer;
let llama3: Tokenizer;
let llama2: Tokenizer;
let gpt2: Tokenizer;
before(async () => {
  root = tempTokenizerDir();
  chatml = await Tokenizer.fromPretrained(
    writeByteLevelTokenizer(join(root, "chatml"), { chatTemplate: "chatml" }).dir,
  );
  llama3 = await Tokenizer.fromPretrained(writeLlama3Tokenizer(join(root, "llama3")).dir);
  llama2 = await Tokenizer.fromPretrained(writeLlama2Tokenizer(join(root, "llama2"), { chatTemplate: "llama2" }).dir);
  gpt2 = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "gpt2")).dir);
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("ChatML (Qwen2) template", () => {
  it("renders a system + user + assistant conversation", () => {
    assert.equal(
      chatml.applyChatTemplate(CONVERSATION),
      "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n" +
        "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n" +
        "<|im_start|>assistant\n2 + 2 = 4.<|im_end|>\n",
    );
  });

  it("adds the generation prompt", () => {
    assert.equal(
      chatml.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
      "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n" +
        "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n" +
        "<|im_start|>assistant\n2 + 2 = 4.<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    assert.equal(
      chatml.applyChatTemplate(PROMPT, { addGenerationPrompt: true }),
      "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("supplies Qwen2's default system message when there is none", () => {
    assert.equal(
      chatml.applyChatTemplate([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }),
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("tokenizes the render with the markers as single ids", () => {
    const { text, ids } = chatml.applyChatTemplate(CONVERSATION, { tokenize: true });
    assert.equal(text, chatml.applyChatTemplate(CONVERSATION));
    const start = chatml.tokenToId("<|im_start|>")!;
    const end = chatml.tokenToId("<|im_end|>")!;
    assert.equal(ids.filter((x) => x === start).length, 3);
    assert.equal(ids.filter((x) => x === end).length, 3);
    assert.equal(chatml.decode(ids), text);
    assert.equal(chatml.eosTokenId, end);
  });

  it("continues the final message when asked", () => {
    const partial = [...PROMPT, { role: "assistant", content: "2 + 2 =" }];
    assert.equal(
      chatml.applyChatTemplate(partial, { continueFinalMessage: true }),
      "<|im_start|>system\nYou are a careful math tutor.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n2 + 2 =",
    );
    assert.throws(
      () => chatml.applyChatTemplate(partial, { continueFinalMessage: true, addGenerationPrompt: true }),
      ChatTemplateError,
    );
  });
});

describe("Llama 3 template", () => {
  const full =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a careful math tutor.<|eot_id|>" +
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>" +
    "<|start_header_id|>assistant<|end_header_id|>\n\n2 + 2 = 4.<|eot_id|>";

  it("renders a system + user + assistant conversation", () => {
    assert.equal(llama3.applyChatTemplate(CONVERSATION), full);
  });

  it("adds the generation prompt", () => {
    assert.equal(
      llama3.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
      full + "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    assert.equal(
      llama3.applyChatTemplate(PROMPT, { addGenerationPrompt: true }),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a careful math tutor.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("trims message content, as Llama 3's template does", () => {
    assert.equal(
      llama3.applyChatTemplate([{ role: "user", content: "  Hi there \n" }]),
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
    );
  });

  it("tokenizes without a second BOS", () => {
    const { ids } = llama3.applyChatTemplate(CONVERSATION, { tokenize: true });
    const bos = llama3.bosTokenId!;
    assert.equal(ids[0], bos);
    assert.equal(ids.filter((x) => x === bos).length, 1);
    assert.equal(ids.filter((x) => x === llama3.tokenToId("<|eot_id|>")).length, 3);
    assert.equal(ids[ids.length - 1], llama3.eosTokenId);
    assert.equal(llama3.decode(ids), full);
  });
});

describe("Llama 2 template", () => {
  it("renders [INST] turns with BOS and EOS from the config's AddedToken objects", () => {
    assert.equal(
      llama2.applyChatTemplate(CONVERSATION),
      "<s>[INST] <<SYS>>\nYou are a careful math tutor.\n<</SYS>>\n\nWhat is 2 + 2? [/INST] 2 + 2 = 4. </s>",
    );
  });

  it("turns raise_exception into a ChatTemplateError with the template's message", () => {
    assert.throws(
      () => llama2.applyChatTemplate([{ role: "assistant", content: "first" }]),
      (e: unknown) => e instanceof ChatTemplateError && /Conversation roles must alternate/.test(e.message),
    );
  });
});

describe("template selection and context", () => {
  it("explains how to supply a template when there is none", () => {
    assert.equal(gpt2.chatTemplate, undefined);
    assert.throws(
      () => gpt2.applyChatTemplate(CONVERSATION),
      (e: unknown) =>
        e instanceof ChatTemplateError &&
        e.message.includes(join(root, "gpt2")) &&
        e.message.includes("chatTemplate") &&
        e.message.includes("chat_template") &&
        e.message.includes("tokenizer_config.json"),
    );
  });

  it("takes a template string per call", () => {
    assert.equal(
      gpt2.applyChatTemplate(PROMPT, { chatTemplate: CHATML_TEMPLATE, addGenerationPrompt: true }),
      chatml.applyChatTemplate(PROMPT, { addGenerationPrompt: true }),
    );
  });

  it("picks named templates: by name, tool_use when tools are given, else default", async () => {
    const dir = writeByteLevelTokenizer(join(root, "named"), {
      config: {
        chat_template: [
          { name: "default", template: "D{{ messages | length }}" },
          { name: "tool_use", template: "T{{ tools | length }}" },
          { name: "plain", template: "P{{ eos_token }}" },
        ],
      },
    }).dir;
    const tok = await Tokenizer.fromPretrained(dir);
    assert.deepEqual(Object.keys(tok.chatTemplates).sort(), ["default", "plain", "tool_use"]);
    assert.equal(tok.applyChatTemplate(PROMPT), "D2");
    assert.equal(tok.applyChatTemplate(PROMPT, { tools: [{ name: "a" }, { name: "b" }] }), "T2");
    assert.equal(tok.applyChatTemplate(PROMPT, { chatTemplate: "plain" }), "P<|endoftext|>");
  });

  it("gives templates the special tokens, tools/documents (null by default) and extra context", () => {
    const t =
      "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|{{ when }}";
    assert.equal(
      llama2.applyChatTemplate(PROMPT, { chatTemplate: t, context: { when: "today" } }),
      "<s>|</s>||true|true|false|today",
    );
    // No pad token in a Llama 2 config: the template sees none, as in transformers.
    assert.equal(
      chatml.applyChatTemplate(PROMPT, { chatTemplate: "{{ bos_token is defined }}|{{ pad_token }}" }),
      "false|<|endoftext|>",
    );
  });

  it("reports templates that do not parse, and bad messages", () => {
    assert.throws(
      () => llama3.applyChatTemplate(PROMPT, { chatTemplate: "{% for m in messages %}" }),
      ChatTemplateError,
    );
    assert.throws(() => renderChatTemplate(LLAMA3_TEMPLATE, [{ content: "x" } as unknown as ChatMessage], {}), /role/);
  });

  it("setChatTemplate adds a template to a tokenizer without one", async () => {
    const tok = await Tokenizer.fromPretrained(writeByteLevelTokenizer(join(root, "settable")).dir);
    tok.setChatTemplate(CHATML_TEMPLATE);
    assert.equal(tok.applyChatTemplate(CONVERSATION), chatml.applyChatTemplate(CONVERSATION));
    tok.setChatTemplate(undefined);
    assert.throws(() => tok.applyChatTemplate(CONVERSATION), ChatTemplateError);
  });
});

// The same templates through Python's Jinja2 with transformers' settings, where a python3 has it.
const PY_RENDER = `
import json, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError
def raise_exception(message):
    raise TemplateError(message)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.globals["raise_exception"] = raise_exception
out = []
for c in json.load(sys.stdin):
    try:
        out.append(env.from_string(c["template"]).render(**c["context"]))
    except TemplateError as e:
        out.append({"error": str(e)})
print(json.dumps(out))
`;

// Python's str.strip family strips only the characters given (Qwen3's template relies on it).
const STRIP_TEMPLATE =
  "{% for m in messages %}[{{ m.content.lstrip('\\n') }}|{{ m.content.rstrip('\\n ') }}|{{ m.content.strip('\\n') }}|" +
  "{{ m.content.split('</think>')[-1].lstrip('\\n') }}|{{ m.content.strip() }}|{{ m.content.lstrip(none) }}]{% endfor %}";

describe("str.strip, lstrip and rstrip with an argument", () => {
  it("strip only the characters given, as Python does", () => {
    const got = renderChatTemplate(
      STRIP_TEMPLATE,
      [{ role: "assistant", content: "\n  <think>x</think>\n\n  hi \n" }],
      {},
    );
    assert.equal(
      got,
      "[  <think>x</think>\n\n  hi \n|\n  <think>x</think>\n\n  hi|  <think>x</think>\n\n  hi |  hi \n|<think>x</think>\n\n  hi|<think>x</think>\n\n  hi \n]",
    );
    assert.throws(
      () => renderChatTemplate("{{ messages[0].content.strip(3) }}", [{ role: "user", content: "a" }], {}),
      /strip\(\) argument must be a string/,
    );
  });
});

describe("agreement with Python's Jinja2", { skip: skipUnless("jinja2") }, () => {
  it("renders the ChatML, Llama 3 and Llama 2 templates (and str.strip with arguments) identically", () => {
    const conversations: ChatMessage[][] = [
      CONVERSATION,
      PROMPT,
      [
        { role: "user", content: "  spaced  \n" },
        { role: "assistant", content: " ok " },
        { role: "user", content: "más, 中文 🤖" },
      ],
      [{ role: "assistant", content: "starts wrong" }],
      [{ role: "user", content: "\n\n  lead</think>\n trail \n\n" }],
    ];
    const templates: [string, Record<string, string>][] = [
      [CHATML_TEMPLATE, { eos_token: "<|im_end|>", pad_token: "<|endoftext|>" }],
      [LLAMA3_TEMPLATE, { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" }],
      [LLAMA2_TEMPLATE, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" }],
      [STRIP_TEMPLATE, {}],
    ];
    const cases: { template: string; specials: Record<string, string>; messages: ChatMessage[]; gen: boolean }[] = [];
    for (const [template, specials] of templates) {
      for (const messages of conversations)
        for (const gen of [false, true]) cases.push({ template, specials, messages, gen });
    }
    const input = cases.map((c) => ({
      template: c.template,
      context: { ...c.specials, messages: c.messages, add_generation_prompt: c.gen, tools: null, documents: null },
    }));
    const r = spawnSync(pythonWith("jinja2")!, ["-c", PY_RENDER], { input: JSON.stringify(input), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const expected = JSON.parse(r.stdout) as (string | { error: string })[];
    cases.forEach((c, i) => {
      let got: string | { error: string };
      try {
        got = renderChatTemplate(c.template, c.messages, c.specials, { addGenerationPrompt: c.gen });
      } catch (e) {
        got = { error: (e as Error).message.replace(/^chat template failed: /, "") };
      }
      assert.deepEqual(got, expected[i], `case ${i}`);
    });
  });
});

describe("bounded rendering", () => {
  // Each would, unbounded, run for minutes and end the process with V8's heap out of memory.
  const RUNAWAY: Record<string, string> = {
    "a huge range": "{% for i in range(100000000) %}x{% endfor %}",
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "a loop over the messages in a loop": "{% for i in range(100000) %}{% for m in messages %}{% endfor %}{% endfor %}",
    "a string doubled in a loop":
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "a list doubled in a loop":
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
    "a huge indent": "{{ 'a\\nb' | indent(100000000) }}",
  };
  for (const [what, template] of Object.entries(RUNAWAY)) {
    it(`stops ${what} within seconds, naming the template's source`, () => {
      const started = Date.now();
      assert.throws(
        () => renderChatTemplate(template, CONVERSATION, {}, { templateSource: "recipe.yaml: chat_template" }),
        (e: unknown) =>
          e instanceof ChatTemplateError && /^chat template from recipe\.yaml: chat_template stopped: /.test(e.message),
      );
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    });
  }

  it("still renders loops, range() and strftime_now as Jinja does", () => {
    const template =
      "{{ range(3)|join(',') }} {{ range(1, 10, 3)|join(',') }} {{ range(3, 0, -1)|join(',') }} " +
      "{{ range(0)|length }} {% for m in messages %}{{ loop.index }}{% endfor %} {{ strftime_now('%Y %%') }}";
    assert.equal(
      renderChatTemplate(template, CONVERSATION, {}),
      `0,1,2 1,4,7 3,2,1 0 123 ${new Date().getFullYear()} %`,
    );
  });

  it("names the tokenizer_config.json or chat_template.jinja the template came from", () => {
    const loop = "{% for i in range(100000000) %}x{% endfor %}";
    const fromConfig = writeByteLevelTokenizer(join(root, "loop-config"), { chatTemplate: loop }).dir;
    assert.throws(
      () => Tokenizer.fromPretrainedSync(fromConfig).applyChatTemplate(PROMPT),
      (e: unknown) =>
        e instanceof ChatTemplateError &&
        e.message.includes(`from ${join(fromConfig, "tokenizer_config.json")} stopped`),
    );
    const fromFile = writeByteLevelTokenizer(join(root, "loop-file"), { chatTemplate: "chatml" }).dir;
    writeFileSync(join(fromFile, "chat_template.jinja"), loop);
    assert.throws(
      () => Tokenizer.fromPretrainedSync(fromFile).applyChatTemplate(PROMPT),
      (e: unknown) =>
        e instanceof ChatTemplateError && e.message.includes(`from ${join(fromFile, "chat_template.jinja")} stopped`),
    );
  });
});
