"""The synchronous endpoints on the real API: /process/recognize and /process/localize."""

from __future__ import annotations

import httpx
import pytest

SAMPLES = [
    ("en", "The weather is lovely today and we are going for a long walk in the park.", "English"),
    ("fr", "Le temps est magnifique aujourd'hui, nous allons faire une promenade.", "French"),
    ("de", "Das Wetter ist heute herrlich und wir machen einen Spaziergang im Park.", "German"),
    ("es", "Hoy hace un tiempo precioso y vamos a dar un largo paseo por el parque.", "Spanish"),
    ("it", "Oggi il tempo è bellissimo e andiamo a fare una passeggiata nel parco.", "Italian"),
    ("pt", "O tempo está maravilhoso hoje e vamos dar um longo passeio no parque.", "Portuguese"),
    ("nl", "Het weer is vandaag prachtig en we gaan een wandeling maken in het park.", "Dutch"),
    ("ru", "Сегодня прекрасная погода, и мы идём на долгую прогулку в парк.", "Russian"),
    ("pl", "Dzisiaj jest piękna pogoda i idziemy na długi spacer do parku.", "Polish"),
    ("ja", "今日はとても良い天気なので、公園で長い散歩をします。", "Japanese"),
    ("ko", "오늘은 날씨가 정말 좋아서 공원에서 오래 산책을 할 거예요.", "Korean"),
    ("ar", "الطقس جميل اليوم وسنذهب في نزهة طويلة في الحديقة.", "Arabic"),
    ("he", "מזג האוויר נפלא היום ואנחנו יוצאים לטיול ארוך בפארק.", "Hebrew"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "text", "label"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_recognize_names_the_language(
    client: httpx.Client, code: str, text: str, label: str
) -> None:
    resp = client.post("/process/recognize", json={"text": text})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "locale": code,
        "language": code,
        "region": None,
        "script": None,
        "label": label,
        "direction": "rtl" if code in ("ar", "he") else "ltr",
    }


def test_recognize_labels_in_another_language_and_validates(client: httpx.Client) -> None:
    resp = client.post("/process/recognize", json={"text": SAMPLES[2][1], "labelLocale": "fr"})
    assert resp.json()["label"] == "allemand"
    for body in ({"text": ""}, {"text": "x", "labelLocale": "xx_YY"}, {"txt": "hello"}, {}):
        bad = client.post("/process/recognize", json=body)
        assert bad.status_code == 400 and bad.json()["_tag"] == "ValidationError", body
    no_key = httpx.post(f"{client.base_url}/process/recognize", json={"text": "hello"})
    assert no_key.status_code == 401


DOC = {
    "title": "Welcome back, {name}!",
    "steps": [{"id": "s1", "body": "<b>Save</b> your work before %s."}],
    "count": 3,
    "flag": False,
}


def test_localize_translates_one_document_at_once(client: httpx.Client) -> None:
    resp = client.post(
        "/process/localize", json={"sourceLocale": "en", "targetLocale": "de", "data": DOC}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["sourceLocale"] == "en" and body["targetLocale"] == "de"
    assert body["model"] == "pseudo" and body["usage"]["strings"] == 3
    data = body["data"]
    assert list(data) == list(DOC) and data["count"] == 3 and data["flag"] is False
    assert data["title"] != DOC["title"] and "{name}" in data["title"]
    assert "<b>" in data["steps"][0]["body"] and "%s" in data["steps"][0]["body"]


def test_localize_detects_a_missing_source_locale(client: httpx.Client) -> None:
    french = {"intro": SAMPLES[1][1], "n": 1}
    resp = client.post(
        "/process/localize", json={"sourceLocale": None, "targetLocale": "de", "data": french}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["sourceLocale"] == "fr"
    # Already in the target language: nothing to translate.
    same = client.post("/process/localize", json={"targetLocale": "fr", "data": french}).json()
    assert same["sourceLocale"] == "fr" and same["data"] == french


def test_localize_refuses_what_it_cannot_do(client: httpx.Client, other_key: str) -> None:
    only_ja = client.post(
        "/engines",
        json={"name": "ja only", "models": [{"targetLocale": "ja", "provider": "pseudo"}]},
    ).json()["id"]
    unusable = {"sourceLocale": "en", "targetLocale": "de", "data": DOC, "engineId": only_ja}
    cases = [
        (unusable, "no model"),
        ({"sourceLocale": "en", "targetLocale": "de_DE", "data": DOC}, "targetLocale"),
        ({"sourceLocale": None, "targetLocale": "de", "data": {"n": 1}}, "sourceLocale"),
        ({"sourceLocale": "en", "targetLocale": "de", "data": []}, "data"),
        ({"sourceLocale": "en", "data": DOC}, "targetLocale"),
    ]  # fmt: skip
    for body, words in cases:
        resp = client.post("/process/localize", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["_tag"] == "ValidationError" and words in resp.json()["message"]
    foreign = httpx.post(
        f"{client.base_url}/process/localize",
        headers={"X-API-Key": other_key},
        json={"sourceLocale": "en", "targetLocale": "ja", "data": DOC, "engineId": only_ja},
    )
    assert foreign.status_code == 400 and "unknown engine" in foreign.json()["message"]
