// OpenAI chat messages whose content is a list of parts ({type: "text"} and {type: "image_url"})
// as the chat template and the processor read them: image parts become {type: "image"}
// placeholders and their pixels, decoded from data: URLs (PNG or JPEG). Remote URLs are refused:
// the server makes no network requests. Errors name the part at fault (messages[i].content[j]).
import type { ChatMessage } from "../text/chat-template.js";
import { decodeImage, ImageError, type RgbImage } from "../util/images.js";

/** A message or part that cannot be served; `param` names it as OpenAI's error object does. */
export class ContentPartError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
  }
}

export interface ChatWithImages {
  /** Content as a string, or (where a message has images) as {type: "image" | "text"} parts. */
  messages: ChatMessage[];
  /** Every image part's pixels, in the order the messages and their parts give them. */
  images: RgbImage[];
}

const DATA_URL = /^data:image\/(png|jpe?g);base64,/i;

/**
 * Checks `messages` ({role, content} with content a string or a list of parts) and reads their
 * images. `takesImages` false: an image part is refused, naming it. A list of text parts only
 * becomes one string (their texts joined), as OpenAI reads it.
 */
export function readChatMessages(messages: unknown[], takesImages: boolean): ChatWithImages {
  const images: RgbImage[] = [];
  const out = messages.map((m, i): ChatMessage => {
    const at = `messages[${i}]`;
    const { role, content } = (typeof m === "object" && m !== null ? m : {}) as Record<string, unknown>;
    if (typeof role !== "string" || (typeof content !== "string" && !Array.isArray(content))) {
      throw new ContentPartError(`'${at}' must be {role: string, content: string or a list of parts}`, at);
    }
    if (typeof content === "string") return { role, content };
    const parts = content.map((p: unknown, j) => readPart(p, `${at}.content[${j}]`, takesImages, images));
    if (parts.every((p) => p.type === "text")) return { role, content: parts.map((p) => p.text).join("") };
    return { role, content: parts };
  });
  return { messages: out, images };
}

type Part = { type: "text"; text: string } | { type: "image"; text?: undefined };

function readPart(part: unknown, at: string, takesImages: boolean, images: RgbImage[]): Part {
  const p = (typeof part === "object" && part !== null ? part : {}) as Record<string, unknown>;
  if (p.type === "text") {
    if (typeof p.text !== "string") throw new ContentPartError(`'${at}.text' must be a string`, `${at}.text`);
    return { type: "text", text: p.text };
  }
  if (p.type !== "image_url") {
    throw new ContentPartError(`'${at}' must be {type: "text", text} or {type: "image_url", image_url: {url}}`, at);
  }
  if (!takesImages) {
    const message = `'${at}': this model takes no images (serve a vision-language model such as Qwen2-VL)`;
    throw new ContentPartError(message, at);
  }
  const field = `${at}.image_url.url`;
  const holder = p.image_url;
  const url = typeof holder === "string" ? holder : (holder as { url?: unknown } | null | undefined)?.url;
  if (typeof url !== "string") throw new ContentPartError(`'${field}' must be a string`, field);
  if (/^https?:/i.test(url)) {
    throw new ContentPartError(
      `'${field}': image URLs are not fetched (this server makes no network requests); ` +
        "send the image inline as data:image/png;base64,... or data:image/jpeg;base64,...",
      field,
    );
  }
  if (!DATA_URL.test(url)) {
    throw new ContentPartError(
      `'${field}' must be a data:image/png;base64,... or data:image/jpeg;base64,... URL, got "${url.slice(0, 40)}"`,
      field,
    );
  }
  const bytes = Buffer.from(url.slice(url.indexOf(",") + 1), "base64");
  try {
    images.push(decodeImage(bytes, `'${field}'`));
  } catch (e) {
    if (e instanceof ImageError) throw new ContentPartError(e.message, field);
    throw e;
  }
  return { type: "image" };
}
