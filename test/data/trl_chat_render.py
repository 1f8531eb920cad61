"""TRL's rendering of conversational preference pairs, for chat-rendering.test.ts to compare with.

Written from trl/data_utils.py (extract_prompt, apply_chat_template) and transformers'
apply_chat_template (a jinja2 ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks,
the loopcontrols extension, raise_exception, strftime_now and a tojson filter; the special
tokens by name; continue_final_message cuts the render after the last message's content).
Independent of the TypeScript: jinja2 here, @huggingface/jinja there.

stdin: {"cases": [{"template": str, "special_tokens": {...}, "record": {prompt?, chosen, rejected}}]}
stdout (last line): {"results": [{"prompt", "chosen", "rejected"} | {"error"}]}
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


ENV = environment()


def render(template, special_tokens, messages, add_generation_prompt=False, continue_final_message=False):
    text = ENV.from_string(template).render(
        messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt, **special_tokens)
    if continue_final_message:
        final = messages[-1]["content"].strip()
        text = text[: text.rindex(final) + len(final)]
    return text


def common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def extract_prompt(chosen, rejected):
    # trl.data_utils.extract_prompt: the loop variable keeps its last value when nothing differs.
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            break
    return chosen[:idx], chosen[idx:], rejected[idx:]


def trl_pair(template, special_tokens, record):
    chosen, rejected = record["chosen"], record["rejected"]
    prompt = record.get("prompt")
    if not isinstance(prompt, list):  # maybe_extract_prompt: a string prompt beside conversations is not used
        prompt, chosen, rejected = extract_prompt(chosen, rejected)
    last = prompt[-1]["role"]
    if last in ("user", "tool"):
        prompt_text = render(template, special_tokens, prompt, add_generation_prompt=True)
    elif last == "assistant":
        prompt_text = render(template, special_tokens, prompt, continue_final_message=True)
    else:
        raise ValueError(f"Invalid role in the last message: {last}")
    prompt_chosen = render(template, special_tokens, prompt + chosen)
    prompt_rejected = render(template, special_tokens, prompt + rejected)
    prompt_text = common_prefix(common_prefix(prompt_text, prompt_chosen), prompt_rejected)
    return {"prompt": prompt_text, "chosen": prompt_chosen[len(prompt_text):], "rejected": prompt_rejected[len(prompt_text):]}


def main():
    cases = json.load(sys.stdin)["cases"]
    results = []
    for case in cases:
        try:
            results.append(trl_pair(case["template"], case["special_tokens"], case["record"]))
        except Exception as e:  # noqa: BLE001 - reported to the test
            results.append({"error": f"{type(e).__name__}: {e}"})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
