"""Parsers of the recipe formats of the common image generators, each strict about its input.

    A1111 / Forge / SD.Next   PNG text 'parameters', or EXIF UserComment in JPEG/WebP:
        <prompt>\\nNegative prompt: <negative>\\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, ...
    ComfyUI                    PNG text 'prompt' (the API graph: node id → class_type, inputs)
                               or 'workflow' (the editor's graph: nodes with widgets_values)
    InvokeAI                   PNG text 'invokeai_metadata' (3.x+) or 'sd-metadata' (2.x)
    NovelAI                    PNG text 'Software' = NovelAI, 'Comment' (JSON), 'Source' (model)

Each ``parse_*`` returns a checked :class:`~codec.aigi.recipe.Recipe` or raises RecipeError
naming the field; none of them recurses without a bound, backtracks, or trusts a type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import RecipeError
from .recipe import MAX_NAME_CHARS, Recipe, make_recipe

MAX_JSON_CHARS = 256 * 1024
MAX_PARAMETERS_CHARS = 24_000
MAX_SETTINGS_LINE = 8192
MAX_NODES = 2000
MAX_LINK_DEPTH = 16

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9 _\-/+.()]{0,48}")


# ----------------------------------------------------------------------------- JSON


def load_json(text: str, what: str) -> Any:
    if not isinstance(text, str):
        raise RecipeError(f"{what} must be text")
    if len(text) > MAX_JSON_CHARS:
        raise RecipeError(f"{what} is {len(text)} characters of JSON, above the limit {MAX_JSON_CHARS}")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(text, parse_constant=no_constants)
    except RecursionError as e:
        raise RecipeError(f"{what} is nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, huge integers, NaN/Infinity
        raise RecipeError(f"{what} is not valid JSON: {str(e)[:120]}") from e


def _dict(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise RecipeError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


# ----------------------------------------------------------------------------- A1111


def split_settings(line: str) -> list[tuple[str, str]] | None:
    """'Key: value, Key: "quoted, value", ...' → pairs, or None if the line is not settings.

    One pass, no regex backtracking over the line: commas inside double quotes do not split.
    """
    if len(line) > MAX_SETTINGS_LINE:
        raise RecipeError(
            f"A1111 settings line has {len(line)} characters, above the limit {MAX_SETTINGS_LINE}"
        )
    parts: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in line:
        if quoted:
            cur.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            cur.append(ch)
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    pairs: list[tuple[str, str]] = []
    for part in parts:
        if not part.strip():
            continue
        key, sep, value = part.partition(":")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            return None
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
            if not isinstance(value, str):
                value = str(value)
        pairs.append((key, value))
    return pairs


def parse_a1111(text: str) -> Recipe:
    """AUTOMATIC1111 / Forge 'parameters' text (also what they write to EXIF UserComment)."""
    if not isinstance(text, str):
        raise RecipeError("A1111 parameters must be text")
    if len(text) > MAX_PARAMETERS_CHARS:
        raise RecipeError(
            f"A1111 parameters have {len(text)} characters, above the limit {MAX_PARAMETERS_CHARS}"
        )
    lines = text.strip().replace("\r\n", "\n").split("\n")
    settings: list[tuple[str, str]] = []
    if lines and lines[-1].lstrip().startswith("Steps:"):
        parsed = split_settings(lines[-1].strip())
        if parsed is None or len(parsed) < 3:
            raise RecipeError("A1111 parameters: the settings line ('Steps: ...') is malformed")
        settings = parsed
        lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:") :].lstrip(" ")
        target.append(line)
    if not settings and not negative_lines:
        raise RecipeError(
            "A1111 parameters: no settings line and no negative prompt: not generation parameters"
        )
    values: dict[str, str] = {}
    for key, value in settings:
        if key in values:
            raise RecipeError(f"A1111 parameters: setting {key!r} appears twice")
        values[key] = value
    fields: dict[str, Any] = {
        "prompt": "\n".join(prompt_lines).strip(),
        "negative_prompt": "\n".join(negative_lines).strip(),
    }
    known = {
        "Steps": "steps", "Sampler": "sampler", "Schedule type": "scheduler", "CFG scale": "cfg_scale",
        "Seed": "seed", "Model hash": "model_hash", "Model": "model",
    }  # fmt: skip
    extra = {}
    for key, value in values.items():
        if key in known:
            fields[known[key]] = value
        elif key == "Size":
            w, sep, h = value.partition("x")
            if not sep:
                raise RecipeError(f"A1111 parameters: Size must be WIDTHxHEIGHT, got {value[:40]!r}")
            fields["width"], fields["height"] = w, h
        else:
            extra[key] = value
    fields["extra"] = extra
    return make_recipe("a1111", **fields)


def format_a1111(recipe: Recipe) -> str:
    """The inverse of parse_a1111 (how A1111 writes 'parameters'), for writing test data and sets."""
    lines = [recipe.prompt]
    if recipe.negative_prompt:
        lines.append(f"Negative prompt: {recipe.negative_prompt}")
    settings: list[tuple[str, Any]] = [
        ("Steps", recipe.steps), ("Sampler", recipe.sampler), ("Schedule type", recipe.scheduler),
        ("CFG scale", None if recipe.cfg_scale is None else f"{recipe.cfg_scale:g}"), ("Seed", recipe.seed),
        ("Size", f"{recipe.width}x{recipe.height}" if recipe.size else None), ("Model hash", recipe.model_hash),
        ("Model", recipe.model), *recipe.extra.items(),
    ]  # fmt: skip

    def quote(v: str) -> str:
        return json.dumps(v) if ("," in v or ":" in v or '"' in v) else v

    cells = [f"{k}: {quote(str(v))}" for k, v in settings if v is not None]
    lines.append(", ".join(cells))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- ComfyUI


def _is_link(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str | int) and isinstance(v[1], int)


class _ApiGraph:
    """A ComfyUI API graph ('prompt'): node id → {class_type, inputs}, links as [node id, slot]."""

    def __init__(self, obj: Any) -> None:
        obj = _dict(obj, "ComfyUI prompt")
        if len(obj) > MAX_NODES:
            raise RecipeError(f"ComfyUI prompt has {len(obj)} nodes, above the limit {MAX_NODES}")
        self.nodes: dict[str, dict] = {}
        for nid, node in obj.items():
            node = _dict(node, f"ComfyUI node {nid}")
            if not isinstance(node.get("class_type"), str):
                raise RecipeError(f"ComfyUI node {nid}: class_type must be text")
            if not isinstance(node.get("inputs", {}), dict):
                raise RecipeError(f"ComfyUI node {nid}: inputs must be an object")
            self.nodes[str(nid)] = node

    def node(self, link: Any, what: str) -> tuple[str, dict]:
        if not _is_link(link):
            raise RecipeError(f"ComfyUI: {what} must be a link [node id, slot]")
        nid = str(link[0])
        if nid not in self.nodes:
            raise RecipeError(f"ComfyUI: {what} links to node {nid[:20]}, which does not exist")
        return nid, self.nodes[nid]

    def value(self, inputs: dict, names: tuple[str, ...], what: str, depth: int = 0) -> Any:
        """An input by any of its names, following links to primitive/constant nodes."""
        for name in names:
            if name in inputs:
                v = inputs[name]
                while _is_link(v):
                    depth += 1
                    if depth > MAX_LINK_DEPTH:
                        raise RecipeError(
                            f"ComfyUI: {what} is linked through more than {MAX_LINK_DEPTH} nodes"
                        )
                    _, node = self.node(v, what)
                    ins = node.get("inputs", {})
                    v = next(
                        (ins[k] for k in (*names, "value", "text", "string", "int", "float", "seed", "noise_seed")
                         if k in ins), None,
                    )  # fmt: skip
                    if v is None:
                        raise RecipeError(
                            f"ComfyUI: {what} comes from a {node['class_type'][:40]!r} node this reader cannot evaluate"
                        )
                return v
        return None

    def text(self, link: Any, what: str) -> str:
        """The prompt text of a conditioning input (CLIPTextEncode and its SDXL variants), through
        conditioning combiners (first input) and links to text nodes."""
        for _ in range(MAX_LINK_DEPTH):
            _, node = self.node(link, what)
            ins = node.get("inputs", {})
            if any(k in ins for k in ("text", "text_g", "text_l", "prompt")):
                parts = []
                for k in ("text", "text_g", "text_l", "prompt"):
                    v = self.value(ins, (k,), what) if k in ins else None
                    if v is not None and not isinstance(v, str):
                        raise RecipeError(f"ComfyUI: {what} text must be text, got {type(v).__name__}")
                    if v and v not in parts:
                        parts.append(v)
                return "\n".join(parts)
            nxt = next(
                (
                    ins[k]
                    for k in ("conditioning", "conditioning_1", "conditioning_to", "positive")
                    if k in ins
                ),
                None,
            )
            if nxt is None:
                raise RecipeError(
                    f"ComfyUI: {what} comes from a {node['class_type'][:40]!r} node with no prompt text"
                )
            link = nxt
        raise RecipeError(f"ComfyUI: {what} is linked through more than {MAX_LINK_DEPTH} nodes")

    def model(self, link: Any) -> tuple[str | None, list[str]]:
        """(checkpoint name, LoRA names) up the model input."""
        loras: list[str] = []
        for _ in range(MAX_LINK_DEPTH):
            _, node = self.node(link, "model")
            ins = node.get("inputs", {})
            for k in ("ckpt_name", "unet_name", "model_name"):
                if isinstance(ins.get(k), str):
                    return ins[k], loras
            if isinstance(ins.get("lora_name"), str):
                loras.append(f"{ins['lora_name']}:{ins.get('strength_model', 1)}")
            if "model" not in ins:
                return None, loras
            link = ins["model"]
        raise RecipeError(f"ComfyUI: model is linked through more than {MAX_LINK_DEPTH} nodes")


def parse_comfyui_prompt(text: str) -> Recipe:
    g = _ApiGraph(load_json(text, "ComfyUI prompt"))

    def order(nid: str) -> tuple[int, str]:
        return (int(nid), nid) if nid.isdigit() else (1 << 62, nid)

    samplers = [nid for nid in sorted(g.nodes, key=order) if "KSampler" in g.nodes[nid]["class_type"]]
    if not samplers:
        raise RecipeError("ComfyUI prompt has no KSampler node: no recipe to read")
    ins = g.nodes[samplers[0]].get("inputs", {})
    fields: dict[str, Any] = {
        "seed": g.value(ins, ("seed", "noise_seed"), "seed"),
        "steps": g.value(ins, ("steps",), "steps"),
        "cfg_scale": g.value(ins, ("cfg",), "cfg"),
        "sampler": g.value(ins, ("sampler_name",), "sampler"),
        "scheduler": g.value(ins, ("scheduler",), "scheduler"),
    }
    if "positive" in ins:
        fields["prompt"] = g.text(ins["positive"], "positive prompt")
    if "negative" in ins:
        fields["negative_prompt"] = g.text(ins["negative"], "negative prompt")
    extra: dict[str, str] = {}
    if "model" in ins:
        fields["model"], loras = g.model(ins["model"])
        if loras:
            extra["Lora"] = ", ".join(loras)
    if "latent_image" in ins:
        _, latent = g.node(ins["latent_image"], "latent_image")
        li = latent.get("inputs", {})
        if "width" in li and "height" in li:
            fields["width"] = g.value(li, ("width",), "width")
            fields["height"] = g.value(li, ("height",), "height")
    denoise = ins.get("denoise")
    if isinstance(denoise, int | float) and not isinstance(denoise, bool) and denoise != 1:
        extra["Denoising strength"] = f"{denoise:g}"
    fields["extra"] = extra
    return make_recipe("comfyui", **fields)


def parse_comfyui_workflow(text: str) -> Recipe:
    """The editor's graph: KSampler widgets [seed, control, steps, cfg, sampler, scheduler, denoise]."""
    obj = _dict(load_json(text, "ComfyUI workflow"), "ComfyUI workflow")
    nodes = obj.get("nodes")
    links = obj.get("links", [])
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise RecipeError("ComfyUI workflow: 'nodes' and 'links' must be lists")
    if len(nodes) > MAX_NODES or len(links) > 10 * MAX_NODES:
        raise RecipeError("ComfyUI workflow has too many nodes or links")

    def ref(v: Any) -> int | str | None:
        return v if isinstance(v, int | str) and not isinstance(v, bool) else None

    by_id: dict[Any, dict] = {}
    for n in nodes:
        n = _dict(n, "ComfyUI workflow node")
        if not isinstance(n.get("type"), str):
            raise RecipeError("ComfyUI workflow node: type must be text")
        if ref(n.get("id")) is None:
            raise RecipeError("ComfyUI workflow node: id must be a number or text")
        by_id[n["id"]] = n
    nodes = list(by_id.values())
    origin: dict[Any, Any] = {}
    for link in links:
        if (
            isinstance(link, list)
            and len(link) >= 4
            and ref(link[0]) is not None
            and ref(link[1]) is not None
        ):
            origin[link[0]] = link[1]

    def widgets(n: dict) -> list:
        w = n.get("widgets_values", [])
        if not isinstance(w, list):
            raise RecipeError(f"ComfyUI workflow node {n.get('id')}: widgets_values must be a list")
        return w

    def source_of(n: dict, name: str) -> dict | None:
        inputs = n.get("inputs", [])
        if not isinstance(inputs, list):
            raise RecipeError(f"ComfyUI workflow node {n['id']}: inputs must be a list")
        for i in inputs:
            if isinstance(i, dict) and i.get("name") == name:
                return by_id.get(origin.get(ref(i.get("link"))))
        return None

    sampler = next((n for n in nodes if n["type"] in ("KSampler", "KSamplerAdvanced")), None)
    if sampler is None:
        raise RecipeError("ComfyUI workflow has no KSampler node: no recipe to read")
    w = widgets(sampler)
    if sampler["type"] == "KSamplerAdvanced":
        w = w[1:]  # add_noise comes first
    if len(w) < 6:
        raise RecipeError("ComfyUI workflow: the KSampler node has too few widget values")
    fields: dict[str, Any] = {
        "seed": w[0],
        "steps": w[2],
        "cfg_scale": w[3],
        "sampler": w[4],
        "scheduler": w[5],
    }
    for name, key in (("positive", "prompt"), ("negative", "negative_prompt")):
        src = source_of(sampler, name)
        if src is not None and src["type"].startswith("CLIPTextEncode"):
            texts = [v for v in widgets(src) if isinstance(v, str)]
            fields[key] = texts[0] if texts else ""
    model = source_of(sampler, "model")
    for _ in range(MAX_LINK_DEPTH):
        if model is None:
            break
        mw = [v for v in widgets(model) if isinstance(v, str)]
        if model["type"].startswith("CheckpointLoader") and mw:
            fields["model"] = mw[0]
            break
        model = source_of(model, "model")
    latent = source_of(sampler, "latent_image")
    if latent is not None and latent["type"].startswith("EmptyLatentImage"):
        lw = widgets(latent)
        if len(lw) >= 2:
            fields["width"], fields["height"] = lw[0], lw[1]
    return make_recipe("comfyui-workflow", **fields)


# ----------------------------------------------------------------------------- InvokeAI


def parse_invokeai(text: str) -> Recipe:
    """InvokeAI 3.x+ 'invokeai_metadata'."""
    obj = _dict(load_json(text, "InvokeAI metadata"), "InvokeAI metadata")
    model = obj.get("model")
    name = hash_ = None
    if isinstance(model, dict):
        name = model.get("name", model.get("model_name"))
        hash_ = model.get("hash")
    elif model is not None:
        name = model
    return make_recipe(
        "invokeai", prompt=obj.get("positive_prompt", ""), negative_prompt=obj.get("negative_prompt", ""),
        seed=obj.get("seed"), steps=obj.get("steps"), cfg_scale=obj.get("cfg_scale"),
        scheduler=obj.get("scheduler"), width=obj.get("width"), height=obj.get("height"), model=name,
        model_hash=hash_,
    )  # fmt: skip


def parse_invokeai_legacy(text: str) -> Recipe:
    """InvokeAI 2.x 'sd-metadata': {"model_weights", "image": {"prompt": [{"prompt"}], ...}}."""
    obj = _dict(load_json(text, "InvokeAI sd-metadata"), "InvokeAI sd-metadata")
    image = _dict(obj.get("image", {}), "InvokeAI sd-metadata image")
    prompt = image.get("prompt", "")
    if isinstance(prompt, list):
        texts = [p.get("prompt") for p in prompt if isinstance(p, dict)]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise RecipeError("InvokeAI sd-metadata: prompt list must hold {'prompt': text} objects")
        prompt = " ".join(texts)
    negative = ""
    if isinstance(prompt, str):  # InvokeAI 2 writes the negative as [bracketed] text in the prompt
        m = re.search(r"\[([^\[\]]{0,8000})\]\s*$", prompt)
        if m:
            negative, prompt = m.group(1), prompt[: m.start()].rstrip()
    return make_recipe(
        "invokeai-legacy", prompt=prompt, negative_prompt=negative, seed=image.get("seed"),
        steps=image.get("steps"), cfg_scale=image.get("cfg_scale"), sampler=image.get("sampler"),
        width=image.get("width"), height=image.get("height"), model=obj.get("model_weights"),
        model_hash=obj.get("model_hash"),
    )  # fmt: skip


# ----------------------------------------------------------------------------- NovelAI


def parse_novelai(comment: str, source: str | None = None, description: str | None = None) -> Recipe:
    obj = _dict(load_json(comment, "NovelAI Comment"), "NovelAI Comment")
    prompt = obj.get("prompt", description or "")
    return make_recipe(
        "novelai", prompt=prompt, negative_prompt=obj.get("uc", ""), seed=obj.get("seed"),
        steps=obj.get("steps"), cfg_scale=obj.get("scale"), sampler=obj.get("sampler"),
        scheduler=obj.get("noise_schedule"), width=obj.get("width"), height=obj.get("height"),
        model=(source or "")[:MAX_NAME_CHARS] or None,
    )  # fmt: skip


# ----------------------------------------------------------------------------- XMP

_XMP_SOURCE = re.compile(r"digitalsourcetype/(\w{1,64})", re.IGNORECASE)
AI_SOURCE_TYPES = {"trainedalgorithmicmedia", "compositewithtrainedalgorithmicmedia", "algorithmicmedia"}


def xmp_ai_markers(xml: str) -> list[str]:
    """IPTC DigitalSourceType values in an XMP packet that say the picture was generated.

    A plain search, not an XML parser: an XMP packet is untrusted, and no entity it
    declares is ever expanded here.
    """
    found = []
    for m in _XMP_SOURCE.finditer(xml[:MAX_JSON_CHARS]):
        v = m.group(1)
        if v.lower() in AI_SOURCE_TYPES and v not in found:
            found.append(v)
    return found
