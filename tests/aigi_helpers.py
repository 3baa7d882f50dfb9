"""Sample generation metadata for the AIGI tests, written here from the formats' public
descriptions (A1111's 'parameters' text, ComfyUI's API and editor graphs, InvokeAI's and
NovelAI's JSON, IPTC XMP, EXIF UserComment). No third-party file is copied."""

from __future__ import annotations

import io
import json
import struct
import zlib

from PIL import Image

from codec.aigi import make_recipe
from codec.aigi.write import jpeg_with_recipe, png_with_recipe

PROMPT = "masterpiece, (a red fox:1.2), snowy forest, <lora:foxy_v2:0.8>\nBREAK\nsoft light, [bokeh]"
RECIPE = make_recipe(
    "a1111", prompt=PROMPT, negative_prompt="blurry, lowres, (bad hands:1.3)", seed=1234567, steps=20,
    sampler="DPM++ 2M", scheduler="Karras", cfg_scale=7.5, width=512, height=512,
    model="v1-5-pruned-emaonly", model_hash="6ce0161689",
    extra={"Lora hashes": "foxy_v2: 0a1b2c3d4e5f", "Version": "v1.10.1"},
)  # fmt: skip


def image(size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, (200, 80, 40))


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_with_chunks(*chunks: bytes) -> bytes:
    """A small valid PNG with extra chunks inserted right after IHDR."""
    buf = io.BytesIO()
    image().save(buf, format="PNG")
    data = buf.getvalue()
    ihdr_end = 8 + 25
    return data[:ihdr_end] + b"".join(chunks) + data[ihdr_end:]


def text_chunk(key: str, value: str) -> bytes:
    return png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1"))


def itxt_chunk(key: str, value: str, compress: bool = False) -> bytes:
    payload = zlib.compress(value.encode("utf-8")) if compress else value.encode("utf-8")
    return png_chunk(
        b"iTXt", key.encode("latin-1") + b"\x00" + bytes([int(compress), 0]) + b"\x00\x00" + payload
    )


def comfy_prompt_graph() -> dict:
    """A ComfyUI API graph: checkpoint → LoRA → KSampler, two CLIPTextEncode, an empty latent."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                                      "lora_name": "pixel.safetensors", "strength_model": 0.7}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk, (film grain:0.8)", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 8566257, "steps": 30, "cfg": 6.5, "sampler_name": "dpmpp_2m", "scheduler": "karras",
            "denoise": 1.0, "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }  # fmt: skip


def comfy_workflow_graph() -> dict:
    """The same graph as the editor saves it (nodes with widgets_values, links)."""
    return {
        "nodes": [
            {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd_xl_base_1.0.safetensors"]},
            {"id": 6, "type": "CLIPTextEncode", "widgets_values": ["a lighthouse at dusk, (film grain:0.8)"]},
            {"id": 7, "type": "CLIPTextEncode", "widgets_values": ["text, watermark"]},
            {"id": 5, "type": "EmptyLatentImage", "widgets_values": [1024, 768, 1]},
            {"id": 3, "type": "KSampler", "widgets_values": [8566257, "fixed", 30, 6.5, "dpmpp_2m", "karras", 1.0],
             "inputs": [{"name": "model", "link": 1}, {"name": "positive", "link": 2},
                        {"name": "negative", "link": 3}, {"name": "latent_image", "link": 4}]},
        ],
        "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 6, 0, 3, 1, "CONDITIONING"],
                  [3, 7, 0, 3, 2, "CONDITIONING"], [4, 5, 0, 3, 3, "LATENT"]],
    }  # fmt: skip


INVOKEAI = {
    "positive_prompt": "a tiny robot watering plants, isometric", "negative_prompt": "blurry",
    "seed": 42, "steps": 28, "cfg_scale": 5.0, "scheduler": "euler_a", "width": 768, "height": 768,
    "model": {"name": "juggernaut-xl", "hash": "blake3:abcdef", "base": "sdxl"}, "generation_mode": "sdxl_txt2img",
}  # fmt: skip
INVOKEAI_LEGACY = {
    "model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    "image": {"prompt": [{"prompt": "a castle on a hill [fog, people]", "weight": 1.0}], "seed": 7,
              "steps": 50, "cfg_scale": 7.5, "sampler": "k_lms", "width": 512, "height": 512},
}  # fmt: skip
NOVELAI_COMMENT = {
    "prompt": "1girl, umbrella, rain, city lights", "steps": 28, "height": 1216, "width": 832, "scale": 5.0,
    "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 3141592, "n_samples": 1, "sampler": "k_euler_ancestral",
    "uc": "lowres, bad anatomy",
}  # fmt: skip

XMP_AI = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
    'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
    "</rdf:RDF></x:xmpmeta>"
)


def jpeg_with_xmp(xml: str) -> bytes:
    buf = io.BytesIO()
    image().save(buf, format="JPEG")
    data = buf.getvalue()
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xml.encode("utf-8")
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + seg + data[2:]


def sample_files() -> dict[str, bytes]:
    """One file per supported format, each carrying a recipe or an AI marker."""
    return {
        "a1111-png": png_with_recipe(image(), RECIPE),
        "a1111-jpeg": jpeg_with_recipe(image(), RECIPE),
        "a1111-webp": jpeg_with_recipe(image(), RECIPE, "WEBP"),
        "comfyui-png": png_with_chunks(text_chunk("prompt", json.dumps(comfy_prompt_graph())),
                                       text_chunk("workflow", json.dumps(comfy_workflow_graph()))),
        "comfyui-workflow-png": png_with_chunks(text_chunk("workflow", json.dumps(comfy_workflow_graph()))),
        "invokeai-png": png_with_chunks(itxt_chunk("invokeai_metadata", json.dumps(INVOKEAI), compress=True)),
        "invokeai2-png": png_with_chunks(text_chunk("sd-metadata", json.dumps(INVOKEAI_LEGACY))),
        "novelai-png": png_with_chunks(
            text_chunk("Software", "NovelAI"), text_chunk("Source", "NovelAI Diffusion V3 4BDE2A90"),
            text_chunk("Description", NOVELAI_COMMENT["prompt"]), text_chunk("Comment", json.dumps(NOVELAI_COMMENT)),
        ),
        "xmp-jpeg": jpeg_with_xmp(XMP_AI),
        "c2pa-png": png_with_chunks(png_chunk(b"caBX", b"\x00\x00\x00\x10jumbc2pa....")),
    }  # fmt: skip
