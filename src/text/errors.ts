// Errors raised by the text layer. Messages name the file or the directory at fault.

/** A tokenizer directory or file that cannot be read, or a call that a tokenizer cannot serve. */
export class TokenizerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TokenizerError";
  }
}

/** A chat template that is missing, does not parse, or fails while rendering (raise_exception included). */
export class ChatTemplateError extends TokenizerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ChatTemplateError";
  }
}
