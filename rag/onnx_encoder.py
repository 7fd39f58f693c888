"""A sentence-transformers model run by onnxruntime: the same vectors, without torch.

An export is the model's whole forward pass (transformer, pooling, any dense layer) as one
ONNX graph, made once from the sentence-transformers model by ``export`` (at install, at
package build, or on first use where torch is installed) and checked against it. A model
that ships its own ``onnx/model.onnx`` (the Hugging Face layout: token embeddings out) is
run too, pooled here as its ``1_Pooling/config.json`` says.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# Texts the export is checked on: short, long (past the model's limit), another script, one letter.
_PROBES = (
    "How often do the bearings need oil?",
    "The bearings need oil every 200 operating hours; the belt is checked each month. " * 30,
    "温室的加热器由谁供应燃气？",
    "x",
)
AGREEMENT = 0.9999  # the least cosine between an export's vectors and the model's own


class ExportUnusable(Exception):
    """This model's ONNX graph cannot stand in for it (unknown pooling, extra layers, bad file)."""


def fingerprint(model_dir: Path) -> str:
    """What an export was made from: the weight files' names, sizes and times (a model
    changed in place is exported again)."""
    files = sorted(model_dir.rglob("*.safetensors")) + sorted(model_dir.rglob("*.bin"))
    return json.dumps([[str(f.relative_to(model_dir)), f.stat().st_size, f.stat().st_mtime_ns] for f in files])


def made_export(model_dir: Path, folder: Path) -> Path | None:
    """The export made earlier into ``folder`` from this very model, if any."""
    graph, source = folder / "model.onnx", folder / "source.json"
    try:
        return graph if graph.is_file() and source.read_text() == fingerprint(model_dir) else None
    except OSError:
        return None


def weight_sizes(model_dir: Path) -> dict[str, int]:
    """The size of each top-level weights file, in the order a model's id is made from. A folder
    that ships its export without the weights themselves (the packaged app's) keeps their sizes
    in ``onnx/weights.json``, so that its model keeps the id its collections were made with."""
    try:
        sizes = {str(k): int(v) for k, v in json.loads((model_dir / "onnx" / "weights.json").read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        sizes = {}
    for file in [*model_dir.glob("*.safetensors"), *model_dir.glob("*.bin")]:
        sizes[file.name] = file.stat().st_size
    return {name: sizes[name] for suffix in (".safetensors", ".bin") for name in sorted(sizes) if name.endswith(suffix)}


def shipped_export(model_dir: Path) -> Path | None:
    """The ONNX file a model folder ships itself, if any."""
    path = model_dir / "onnx" / "model.onnx"
    return path if path.is_file() else None


class OnnxEncoder:
    """Unit-length vectors from one ONNX export and the model's own tokenizer."""

    def __init__(self, graph: Path, model_dir: Path, max_tokens: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initializers are not the user's business
        # Idle workers sleep instead of spinning: a search's session and indexing's share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, NoSuchFile, …) derive from it alone
            raise ExportUnusable(f"{graph}: {exc}") from exc
        self.graph = graph
        self.inputs = [i.name for i in self.session.get_inputs()]
        output = self.session.get_outputs()[0]
        self.pooling = _pooling(model_dir) if len(output.shape) == 3 else None
        try:
            self.tokenizer: Tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises its own untyped error for a missing or bad file
            raise ExportUnusable(f"the model's tokenizer.json cannot be read: {exc}") from exc
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        width = output.shape[-1]
        self.dimension = width if isinstance(width, int) else int(self.encode(["x"]).shape[1])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the given order."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # alike lengths pad little
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        parts = [self._batch([texts[i] for i in rows]) for rows in batches]
        if not parts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for rows, vectors in zip(batches, parts, strict=True):
            out[rows] = vectors
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64), "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        result = np.asarray(self.session.run(None, {name: feed[name] for name in self.inputs})[0], dtype=np.float32)
        if self.pooling == "cls":
            return result[:, 0]
        if self.pooling == "mean":
            weights = mask[:, :, None].astype(np.float32)
            return (result * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return result


def _pooling(model_dir: Path) -> str:
    """How a token-embeddings graph becomes one vector, as the model's folder says; refuses a
    model with more layers after pooling (dense), which such a graph leaves out."""
    modules = json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").is_file() else []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if any(kind not in ("Transformer", "Pooling", "Normalize") for kind in kinds):
        raise ExportUnusable(f"the model has layers its ONNX graph lacks: {', '.join(kinds)}")
    try:
        config = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportUnusable(f"no pooling configuration: {exc}") from exc
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise ExportUnusable(f"pooling {config} is not supported")


def export(model_dir: Path, folder: Path, half_weights: bool = False) -> Path:
    """Write ``model_dir``'s whole forward pass as an ONNX graph into ``folder`` (atomically),
    checked to give the model's own vectors; needs torch, sentence-transformers and onnx.
    ``half_weights`` stores the weights as float16 (half the file, for a package; see
    ``store_weights_half``), checked the same way."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.eval()

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.model(features)["sentence_embedding"]

    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = torch.ones((2, 8), dtype=torch.long)
    made_from = fingerprint(model_dir)
    target = folder / "model.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on the model's Python branches
            torch.onnx.export(
                Whole(), (sample, torch.ones_like(sample), torch.zeros_like(sample)), temporary, dynamo=False,
                input_names=names, output_names=["sentence_embedding"], opset_version=17,
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "sentence_embedding": {0: "batch"}},
            )
        os.chmod(temporary, 0o644)
        if half_weights:
            store_weights_half(Path(temporary))
        encoder = OnnxEncoder(Path(temporary), model_dir, model.max_seq_length)
        agreement = float((encoder.encode(_PROBES) * model.encode(list(_PROBES), normalize_embeddings=True)).sum(1).min())
        if agreement < AGREEMENT:
            raise ExportUnusable(f"the export's vectors differ from the model's (cosine {agreement:.6f})")
        os.replace(temporary, target)
        (folder / "source.json").write_text(made_from)
        (folder / "weights.json").write_text(json.dumps(weight_sizes(model_dir)))
    finally:
        Path(temporary).unlink(missing_ok=True)
    log.info("exported %s to %s", model_dir, target)
    return target


def store_weights_half(graph: Path, least: int = 1024) -> None:
    """Rewrite an ONNX file with its float32 weights (initializers and constants of at least
    ``least`` values) stored as float16, each cast back to float32 where the graph reads it: the
    file halves, onnxruntime folds the casts once at load, and the model still computes in
    float32 (only the weights are rounded; ``export`` checks the vectors still agree). Needs onnx."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def halved(tensor: onnx.TensorProto, name: str) -> onnx.TensorProto | None:
        if tensor.data_type != TensorProto.FLOAT or int(np.prod(tensor.dims)) < least:
            return None
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), name)

    def cast(source: str, target: str) -> onnx.NodeProto:
        return helper.make_node("Cast", [source], [target], name=f"{target}.cast", to=TensorProto.FLOAT)

    model = onnx.load(str(graph))
    body = model.graph
    nodes = []
    for weights in list(body.initializer):
        half = halved(weights, f"{weights.name}.float16")
        if half is not None:
            body.initializer.remove(weights)
            body.initializer.append(half)
            nodes.append(cast(half.name, weights.name))  # first: before every reader of it
    for node in body.node:
        value = next((a for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        half = halved(value.t, value.t.name) if value is not None else None
        nodes.append(node)
        if half is not None:
            value.t.CopyFrom(half)
            target = node.output[0]
            node.output[0] = f"{target}.float16"
            nodes.append(cast(node.output[0], target))  # right after it: the order stays topological
    del body.node[:]
    body.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(graph))
