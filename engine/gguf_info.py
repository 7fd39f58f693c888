"""What a GGUF file says about itself, read from its header without loading the model.

Enough to refuse a bad file with a clear message before llama.cpp sees it (not a GGUF,
truncated, an architecture llama.cpp does not know) and to size the context: the trained
context length and the KV cache cost per token.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelInvalid, ModelNotFound

_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")

# Bytes per element of a KV cache entry for the cache types llama.cpp offers.
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """The facts of one model file (all shards together for a split model)."""

    path: Path
    architecture: str
    name: str
    context_length: int
    layers: int
    kv_heads: int
    key_length: int
    value_length: int
    file_size: int
    chat_template: str | None
    layer_bytes: int = 0  # the weights of one repeating layer (blk.N), on average
    other_bytes: int = 0  # the weights outside the layers: embeddings, output
    metadata: dict[str, Any] = field(repr=False, default_factory=dict)

    def kv_bytes_per_token(self, kv_type: str = "f16") -> int:
        """Memory one token of context costs in the KV cache (keys and values, all layers)."""
        per_element = KV_TYPE_BYTES.get(kv_type, 2.0)
        return int(self.layers * self.kv_heads * (self.key_length + self.value_length) * per_element)

    @property
    def is_gpt_oss(self) -> bool:
        """Whether this model speaks harmony (gpt-oss)."""
        return self.architecture == "gpt-oss"


class _Cursor:
    def __init__(self, buffer: mmap.mmap, path: Path) -> None:
        self.buffer = buffer
        self.pos = 0
        self.path = path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buffer):
            raise ModelInvalid(self.path, "the file is truncated (its header ends early); download it again")
        (value,) = struct.unpack_from(fmt, self.buffer, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        if self.pos + length > len(self.buffer):
            raise ModelInvalid(self.path, "the file is truncated (its header ends early); download it again")
        raw = self.buffer[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.take("<Q")
        self.pos += length

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.take("<I"), self.take("<Q")
            if item_kind in _SCALARS:
                size = struct.calcsize(_SCALARS[item_kind]) * count
                if keep and count <= 64:
                    return [self.take(_SCALARS[item_kind]) for _ in range(count)]
                self.pos += size
                return count
            if item_kind == _STRING:
                for _ in range(count):  # vocabularies: hundreds of thousands of strings, skipped
                    self.skip_string()
                return count
            return [self.value(item_kind, keep) for _ in range(count)]
        raise ModelInvalid(self.path, f"unknown value type {kind} in the header")


def _tensor_bytes(kind: int, shape: list[int]) -> int | None:
    try:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (KeyError, ValueError, ImportError):
        return None
    elements = 1
    for dim in shape:
        elements *= dim
    return elements // block * size


def known_architectures() -> set[str]:
    """The model architectures llama.cpp's converter (and so llama.cpp) knows."""
    from gguf.constants import MODEL_ARCH_NAMES

    return set(MODEL_ARCH_NAMES.values())


def read(path: Path | str) -> GGUFInfo:
    """Read and check a GGUF file's header; raise ``ModelNotFound`` or ``ModelInvalid``."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(4) != _MAGIC:
            raise ModelInvalid(path, "it is not a GGUF model file")
    if size < 24:
        raise ModelInvalid(path, "the file is truncated (its header ends early); download it again")
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        if buffer[:4] != _MAGIC:
            raise ModelInvalid(path, "it is not a GGUF model file")
        cursor = _Cursor(buffer, path)
        cursor.pos = 4
        version = cursor.take("<I")
        if version not in (2, 3):
            raise ModelInvalid(path, f"GGUF version {version} is not supported")
        tensor_count, kv_count = cursor.take("<Q"), cursor.take("<Q")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            kind = cursor.take("<I")
            metadata[key] = cursor.value(kind, keep=True)
        end = 0
        in_layers = outside = 0
        for _ in range(tensor_count):
            name = cursor.string()
            dims = [cursor.take("<Q") for _ in range(cursor.take("<I"))]
            kind, offset = cursor.take("<I"), cursor.take("<Q")
            nbytes = _tensor_bytes(kind, dims)
            if nbytes is not None:
                end = max(end, offset + nbytes)
                if name.startswith("blk."):
                    in_layers += nbytes
                else:
                    outside += nbytes
        alignment = int(metadata.get("general.alignment", 32))
        data_start = (cursor.pos + alignment - 1) // alignment * alignment
    if data_start + end > size:
        raise ModelInvalid(
            path, f"the file is truncated ({size:,} of {data_start + end:,} bytes); download it again"
        )
    architecture = str(metadata.get("general.architecture", ""))
    if not architecture or architecture not in known_architectures():
        raise ModelInvalid(path, f"llama.cpp does not know the model architecture {architecture or '(none)'!r}")
    total = size + _other_shards_size(path, metadata)
    arch = architecture

    def meta(key: str, default: int) -> int:
        value = metadata.get(f"{arch}.{key}", default)
        return int(value[0] if isinstance(value, list) and value else value)

    heads = meta("attention.head_count", 1)
    kv_heads = meta("attention.head_count_kv", heads)
    embedding = meta("embedding_length", 0)
    default_head = embedding // heads if heads else 0
    layers = meta("block_count", 0)
    # A split model's header lists the first shard's tensors: scale them to the whole file.
    scale = total / (in_layers + outside) if in_layers + outside else 0.0
    return GGUFInfo(
        path=path,
        architecture=architecture,
        name=str(metadata.get("general.name", path.stem)),
        context_length=meta("context_length", 4096),
        layers=layers,
        kv_heads=kv_heads,
        key_length=meta("attention.key_length", default_head),
        value_length=meta("attention.value_length", default_head),
        file_size=total,
        chat_template=metadata.get("tokenizer.chat_template"),
        layer_bytes=int(in_layers * scale / layers) if layers else 0,
        other_bytes=int(outside * scale),
        metadata=metadata,
    )


def _other_shards_size(path: Path, metadata: dict[str, Any]) -> int:
    """A model split in shards (``-00001-of-00003.gguf``) must have every shard beside it."""
    match = _SHARD.search(path.name)
    count = int(metadata.get("split.count", 0) or 0)
    if not match or count <= 1:
        return 0
    total = 0
    for index in range(2, count + 1):
        shard = path.with_name(_SHARD.sub(f"-{index:05d}-of-{count:05d}.gguf", path.name))
        if not shard.is_file():
            raise ModelInvalid(path, f"shard {shard.name} is missing beside it")
        total += shard.stat().st_size
    return total


def check_adapter(path: Path | str) -> GGUFInfo:
    """Read a LoRA adapter's header; raise ``ModelInvalid`` unless it is one (as convert_lora_to_gguf.py writes)."""
    info = read(path)
    if info.metadata.get("general.type") != "adapter" or info.metadata.get("adapter.type") != "lora":
        raise ModelInvalid(info.path, "it is a model, not a LoRA adapter (a GGUF written by convert_lora_to_gguf.py)")
    return info
