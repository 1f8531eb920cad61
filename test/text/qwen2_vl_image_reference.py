# An independent reference for Qwen2-VL's image processing, written from transformers'
# Qwen2VLImageProcessor behaviour with numpy, PIL (resize, decoding) and torch (patch layout).
# Input (stdin JSON): {"jobs": [{"config": {...}, "images": [{"width", "height", "rgb": base64}],
#                                "files": [paths to decode]}]}
# Output: {"results": [{"pixel_values": base64 float32, "grids": [[t, h, w]], "resized": [base64 uint8 RGB],
#                       "decoded": [{"width", "height", "rgb": base64}]}]}, one a job
import base64
import json
import math
import sys

import numpy as np
import torch
from PIL import Image


def smart_resize(height, width, factor, min_pixels, max_pixels):
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def convert_to_rgb(image):
    # transformers' convert_to_rgb: transparent pixels over white.
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def process(image, cfg):
    p, m, tps = cfg["patch_size"], cfg["merge_size"], cfg["temporal_patch_size"]
    h, w = smart_resize(image.height, image.width, p * m, cfg["min_pixels"], cfg["max_pixels"])
    if (h, w) != (image.height, image.width):
        image = image.resize((w, h), resample=Image.BICUBIC)
    resized = np.asarray(image, dtype=np.uint8)  # [H, W, 3]
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.array(cfg["image_mean"], dtype=np.float32)
    std = np.array(cfg["image_std"], dtype=np.float32)
    x = (x - mean) / std  # float32
    x = x.transpose(2, 0, 1)  # [3, H, W]
    patches = torch.from_numpy(np.array([x])).expand(tps, -1, -1, -1)  # [T, 3, H, W]
    gh, gw = h // p, w // p
    flat = (
        patches.reshape(1, tps, 3, gh // m, m, p, gw // m, m, p)
        .permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        .reshape(gh * gw, 3 * tps * p * p)
        .numpy()
    )
    return flat, [1, gh, gw], resized


def run(req):
    cfg = req.get("config")
    out = {"grids": [], "resized": [], "decoded": []}
    flats = []
    for img in req.get("images", []):
        rgb = np.frombuffer(base64.b64decode(img["rgb"]), dtype=np.uint8).reshape(img["height"], img["width"], 3)
        flat, grid, resized = process(Image.fromarray(rgb, "RGB"), cfg)
        flats.append(flat)
        out["grids"].append(grid)
        out["resized"].append(base64.b64encode(resized.tobytes()).decode())
    if flats:
        out["pixel_values"] = base64.b64encode(np.concatenate(flats).astype(np.float32).tobytes()).decode()
    for path in req.get("files", []):
        image = convert_to_rgb(Image.open(path))
        rgb = np.asarray(image, dtype=np.uint8)
        encoded = base64.b64encode(rgb.tobytes()).decode()
        out["decoded"].append({"width": image.width, "height": image.height, "rgb": encoded})
    return out


print(json.dumps({"results": [run(job) for job in json.load(sys.stdin)["jobs"]]}))
