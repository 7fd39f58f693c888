"""The embedding model runs on onnxruntime from its ONNX export: the same vectors as
sentence-transformers, no torch in the knowledge base's process, torch again where the export
is unusable."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import Embedder
from rag.onnx_encoder import AGREEMENT, OnnxEncoder

TEXTS = [
    "How often do the bearings need oil?",
    "The bearings need oil every 200 operating hours. " * 40,  # past the model's 256 tokens
    "温室的加热器由谁供应燃气？",
    "a",
    "Δ-9 & <tags> 🙂",
]


def _with_torch(model_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    return model.encode(TEXTS, normalize_embeddings=True)


def test_the_export_gives_the_models_own_vectors(embedder: Embedder):
    vectors = embedder.embed(TEXTS)
    assert isinstance(embedder._load(), OnnxEncoder)
    assert (vectors * _with_torch(embedder.model_dir)).sum(1).min() >= AGREEMENT
    # In any order and batch size, for indexing as for a query.
    assert np.allclose(embedder.submit(TEXTS[::-1]).result()[::-1], vectors, atol=1e-5)
    assert np.allclose(embedder.embed_query(TEXTS[2]), vectors[2], atol=1e-5)


def test_a_model_with_its_own_pooling_and_projection_is_exported_whole(tmp_path: Path, embedder: Embedder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models

    encoder = models.Transformer(str(embedder.model_dir))
    pooling = models.Pooling(encoder.get_embedding_dimension(), pooling_mode="cls")
    dense = models.Dense(encoder.get_embedding_dimension(), 96)
    folder = tmp_path / "projected"
    SentenceTransformer(modules=[encoder, pooling, dense], device="cpu").save(str(folder))

    other = Embedder(folder, exports=tmp_path / "exports")
    assert other.dimension == 96 and isinstance(other._load(), OnnxEncoder)
    assert (other.embed(TEXTS) * _with_torch(folder)).sum(1).min() >= AGREEMENT

    # Changed in place (same files, new weights): exported again, never the stale graph.
    SentenceTransformer(modules=[models.Transformer(str(embedder.model_dir)), pooling,
                                 models.Dense(encoder.get_embedding_dimension(), 96)], device="cpu").save(str(folder))
    again = Embedder(folder, exports=tmp_path / "exports")
    assert again.model_id == other.model_id
    assert (again.embed(TEXTS) * _with_torch(folder)).sum(1).min() >= AGREEMENT


def _linked_copy(model_dir: Path, folder: Path, leave_out: str = "") -> Path:
    for item in model_dir.rglob("*"):
        if item.is_file() and not (leave_out and item.match(leave_out)):
            (folder / item.relative_to(model_dir)).parent.mkdir(parents=True, exist_ok=True)
            (folder / item.relative_to(model_dir)).symlink_to(item)
    (folder / "onnx").mkdir()
    return folder


def test_a_models_own_token_embeddings_graph_is_pooled_as_its_folder_says(tmp_path: Path, embedder: Embedder):
    """The Hugging Face layout (onnx/model.onnx, token embeddings out), as the multilingual
    model of the catalog ships it."""
    import torch
    from transformers import AutoModel

    folder = _linked_copy(embedder.model_dir, tmp_path / "model")
    bert = AutoModel.from_pretrained(str(embedder.model_dir), local_files_only=True).eval()

    class Tokens(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
            return bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    sample = torch.ones((1, 8), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    bert.requires_grad_(False)
    torch.onnx.export(Tokens(), (sample, sample, sample * 0), str(folder / "onnx" / "model.onnx"), dynamo=False,
                      opset_version=17, input_names=names, output_names=["last_hidden_state"],
                      dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})

    shipped = Embedder(folder, exports=tmp_path / "exports")
    assert isinstance(shipped._load(), OnnxEncoder) and shipped._load().pooling == "mean"
    assert (shipped.embed(TEXTS) * embedder.embed(TEXTS)).sum(1).min() >= AGREEMENT
    assert not (tmp_path / "exports").exists()  # nothing exported: the model brought its own


def test_a_model_shipped_with_its_export_alone_keeps_its_id_and_vectors(tmp_path: Path, embedder: Embedder):
    """The packaged app's model folder: the ONNX graph and the weights' sizes, not the weights."""
    import json

    from rag.onnx_encoder import weight_sizes

    folder = _linked_copy(embedder.model_dir, tmp_path / "model", leave_out="*.safetensors")
    (folder / "onnx" / "model.onnx").symlink_to(embedder._load().graph)
    (folder / "onnx" / "weights.json").write_text(json.dumps(weight_sizes(embedder.model_dir)))

    shipped = Embedder(folder, exports=tmp_path / "exports")
    assert shipped.model_id.split("@")[1] == embedder.model_id.split("@")[1]  # its collections need no re-embedding
    assert np.allclose(shipped.embed(TEXTS), embedder.embed(TEXTS), atol=1e-6)
    assert not (tmp_path / "exports").exists()


def test_a_broken_export_falls_back_to_torch_with_a_warning(tmp_path: Path, embedder: Embedder,
                                                            caplog: pytest.LogCaptureFixture):
    folder = _linked_copy(embedder.model_dir, tmp_path / "model")
    (folder / "onnx" / "model.onnx").write_bytes(b"not a graph")

    broken = Embedder(folder, exports=tmp_path / "exports")
    with caplog.at_level(logging.WARNING, logger="rag.embedding"):
        vectors = broken.embed(TEXTS)
    assert "ONNX graph cannot be used" in caplog.text
    assert not isinstance(broken._load(), OnnxEncoder)
    assert (vectors * embedder.embed(TEXTS)).sum(1).min() >= AGREEMENT


def test_searching_loads_neither_torch_nor_sentence_transformers(tmp_path: Path, embedder: Embedder):
    embedder.embed(["made once per checkout"])  # the export exists before the new process starts
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "oil.txt").write_text("The bearings need oil every 200 operating hours.")
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from rag.embedding import Embedder
        from rag.knowledge_base import KnowledgeBase
        from rag.storage.vectors import VectorStore

        folder = Path({str(tmp_path)!r})
        kb = KnowledgeBase(VectorStore.embedded(folder / "chroma"), Embedder(), folder / "keyword")
        kb.ingest([folder / "docs"], "Docs")
        hits = kb.search("How often do the bearings need oil?", "Docs")
        assert "200 operating hours" in hits[0].text, hits
        heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
        print("heavy:", heavy)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "heavy: []" in done.stdout


def test_an_export_with_float16_weights_is_half_the_size_and_gives_the_same_vectors(tmp_path: Path,
                                                                                     embedder: Embedder):
    """The packaged app's export (installers/export_embedder.py): weights stored as float16."""
    from rag.onnx_encoder import export

    half = export(embedder.model_dir, tmp_path / "half", half_weights=True)
    assert half.stat().st_size < 0.55 * embedder._load().graph.stat().st_size
    encoder = OnnxEncoder(half, embedder.model_dir, embedder.max_tokens)
    assert (encoder.encode(TEXTS) * _with_torch(embedder.model_dir)).sum(1).min() >= AGREEMENT


def test_weights_stored_as_float16_still_compute_in_float32(tmp_path: Path):
    """Initializers (torch's exports) and Constant nodes (RapidOCR's Paddle models) alike."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from rag.onnx_encoder import store_weights_half

    rng = np.random.default_rng(7)
    weights = rng.normal(size=(64, 64)).astype(np.float32)
    shift = rng.normal(size=(32, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["shift"], value=numpy_helper.from_array(shift, "shift")),
         helper.make_node("MatMul", ["x", "weights"], ["product"]),
         helper.make_node("Add", ["product", "shift"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [32, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [32, 64])],
        initializer=[numpy_helper.from_array(weights, "weights")])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    size = path.stat().st_size
    x = rng.normal(size=(32, 64)).astype(np.float32)

    store_weights_half(path)
    assert path.stat().st_size < 0.6 * size
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": x})[0]
    assert y.dtype == np.float32
    expected = x @ weights.astype(np.float16).astype(np.float32) + shift.astype(np.float16).astype(np.float32)
    assert np.allclose(y, expected, atol=1e-4)
