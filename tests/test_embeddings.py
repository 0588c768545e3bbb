"""Embeddings: the API's side (encodings, validation, routing) in process on the fake model; what
the local sentence-transformers model does (its vectors, tokenizer and size) on the real server."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai import AzureOpenAI, OpenAI

from conftest import API_VERSION, App
from fake_model import EMBEDDING_MODEL

EMBED = f"/openai/deployments/text-embedding-3-small/embeddings?api-version={API_VERSION}"


@pytest.fixture
def api(fake: App) -> Iterator[httpx.Client]:
    """The app in process on the fake models, with key1."""
    with fake.http() as client:
        yield client


def test_base64_and_float_encodings_carry_the_same_vector(api: httpx.Client) -> None:
    as_float = api.post(EMBED, json={"input": "hello world", "encoding_format": "float"}).json()
    as_base64 = api.post(EMBED, json={"input": "hello world", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(as_base64["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, np.array(as_float["data"][0]["embedding"], dtype="float32"), rtol=1e-6)


def test_vectors_are_normalised_and_similar_texts_are_close(azure: AzureOpenAI) -> None:
    data = azure.embeddings.create(
        model="text-embedding-3-small", input=["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly tax law"]
    ).data
    cat, kitten, tax = (np.array(item.embedding) for item in data)
    assert np.linalg.norm(cat) == pytest.approx(1.0, abs=1e-4)
    assert cat @ kitten > cat @ tax


def test_token_array_input_embeds_like_the_text_it_encodes(http: httpx.Client) -> None:
    # all-MiniLM-L6-v2's own tokenizer: "hello world" is [7592, 2088].
    by_text = http.post(EMBED, json={"input": "hello world", "encoding_format": "float"}).json()
    by_tokens = http.post(EMBED, json={"input": [[7592, 2088]], "encoding_format": "float"}).json()
    single = http.post(EMBED, json={"input": [7592, 2088], "encoding_format": "float"}).json()
    np.testing.assert_allclose(by_tokens["data"][0]["embedding"], by_text["data"][0]["embedding"], atol=1e-5)
    assert len(single["data"]) == 1


def test_token_ids_outside_the_vocabulary_are_a_400(http: httpx.Client) -> None:
    response = http.post(EMBED, json={"input": [[99_999_999]]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


def test_dimensions_the_model_cannot_honour_is_a_400(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        azure.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=256)
    assert caught.value.param == "dimensions"


def test_dimensions_equal_to_the_native_size_is_accepted(azure: AzureOpenAI) -> None:
    assert len(azure.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=384).data[0].embedding) == 384


def test_empty_input_is_a_400(api: httpx.Client) -> None:
    for bad in ("", [], [""]):
        assert api.post(EMBED, json={"input": bad}).status_code == 400


def test_input_longer_than_the_model_takes_is_context_length_exceeded(http: httpx.Client) -> None:
    response = http.post(EMBED, json={"input": "word " * 600})
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"


def test_v1_client_embeds_through_the_deployment_name(fake: App) -> None:
    v1 = OpenAI(base_url=f"{fake.client.base_url}/openai/v1/", api_key=fake.key, http_client=fake.client)
    response = v1.embeddings.create(model="text-embedding-3-small", input=["one", "two", "three"])
    assert [item.index for item in response.data] == [0, 1, 2]
    assert response.model == EMBEDDING_MODEL


def test_the_response_names_the_local_model(openai_v1: OpenAI) -> None:
    assert openai_v1.embeddings.create(model="text-embedding-3-small", input="one").model == "all-minilm-l6-v2"


def test_embeddings_on_a_chat_deployment_is_operation_not_supported(fake: App) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        fake.azure().embeddings.create(model="gpt-4o", input="hi")
    assert caught.value.code == "OperationNotSupported"


# -- the multilingual model ---------------------------------------------------------------------

def test_the_multilingual_model_puts_a_translation_nearer_than_another_english_sentence(azure: AzureOpenAI) -> None:
    data = azure.embeddings.create(
        model="multilingual-embeddings",
        input=["We need it for the API.", "Lo necesitamos para la API.", "Wir brauchen es für die API.",
               "What is the weather like today?"],
    ).data
    english, spanish, german, unrelated = (np.array(item.embedding) for item in data)
    assert len(english) == 512
    assert np.linalg.norm(spanish) == pytest.approx(1.0, abs=1e-4)
    assert min(english @ spanish, english @ german) > english @ unrelated + 0.3


def test_the_multilingual_model_counts_the_tokens_it_is_billed_for(azure: AzureOpenAI) -> None:
    one = azure.embeddings.create(model="multilingual-embeddings", input="hello").usage.prompt_tokens
    two = azure.embeddings.create(model="multilingual-embeddings", input=["hello", "hello"]).usage.prompt_tokens
    assert (one > 0, two) == (True, 2 * one)


def test_the_multilingual_model_refuses_token_arrays_with_a_400(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        azure.embeddings.create(model="multilingual-embeddings", input=[[1, 2, 3]])
    assert "text inputs only" in str(refused.value)


def test_the_multilingual_model_refuses_an_overlong_input_with_a_400(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        azure.embeddings.create(model="multilingual-embeddings", input="word " * 600)
    assert refused.value.code == "context_length_exceeded"
