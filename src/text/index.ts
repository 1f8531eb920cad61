// The text layer: tokenizers (tokenizer.json through @huggingface/tokenizers) and chat templates
// (Jinja through @huggingface/jinja), read and written in Hugging Face's layout.
export {
  Tokenizer,
  type EncodeOptions,
  type DecodeOptions,
  type ApplyChatTemplateOptions,
  type ChatEncoding,
  type TokenizerSource,
} from "./tokenizer.js";
export { AutoTokenizer } from "./auto.js";
export { renderChatTemplate, type ChatMessage, type RenderChatOptions } from "./chat-template.js";
export {
  parseTokenizerConfig,
  tokenContent,
  parseChatTemplates,
  SPECIAL_TOKEN_KEYS,
  type ParsedTokenizerConfig,
  type SpecialTokenKey,
} from "./tokenizer-config.js";
export { TokenizerError, ChatTemplateError } from "./errors.js";
export {
  Qwen2VLImageProcessor,
  smartResize,
  resizeBicubic,
  parseImageProcessorConfig,
  QWEN2_VL_IMAGE_DEFAULTS,
  type ImageProcessorConfig,
  type ProcessedImages,
} from "./image-processor.js";
export {
  AutoProcessor,
  Qwen2VLProcessor,
  PREPROCESSOR_CONFIG,
  loadImage,
  IMAGE_PAD,
  VISION_START,
  VISION_END,
  type ImageInput,
  type ProcessorInput,
  type ProcessorOutput,
} from "./vl-processor.js";
