"""The agent never claims an action it did not take."""

from __future__ import annotations

from stockade.routines.claims import claims, unbacked_claims
from stockade.routines.parser import parse_routine
from stockade.routines.service import BUILTIN_DIRECTORY

FUNCTIONS = parse_routine((BUILTIN_DIRECTORY / "baa.md").read_text(), "baa").functions.values()


def test_reports_of_done_actions_are_claims() -> None:
    assert claims("I've submitted your BAA request. It will take a day.") == ["I've submitted your BAA request."]
    assert claims("Your case has been closed.") == ["Your case has been closed."]
    assert claims("Here is the list of endpoints.") == ["Here is the list of endpoints."]


def test_future_and_instructions_are_not_claims() -> None:
    assert claims("Our team will respond within 1-2 business days.") == []
    assert claims("To obtain a BAA for our API, please email baa@openai.com.") == []


def test_a_claim_backed_by_a_function_called_this_turn_passes() -> None:
    text = "Thank you for contacting us. This case (abc) is now resolved."
    assert unbacked_claims(text, FUNCTIONS, {"case_resolution"}) == []


def test_the_same_claim_without_the_call_is_caught() -> None:
    text = "This case is now resolved."
    assert unbacked_claims(text, FUNCTIONS, set()) == ["This case is now resolved."]


def test_a_claim_no_function_could_back_is_always_caught() -> None:
    text = "I've emailed the signed BAA to you."
    assert unbacked_claims(text, FUNCTIONS, {"case_resolution"}) == [text]


def test_reports_of_done_actions_are_claims_in_the_translated_languages() -> None:
    assert claims("He enviado su solicitud de BAA.", "es") == ["He enviado su solicitud de BAA."]
    assert claims("Su caso ya está cerrado.", "es") == ["Su caso ya está cerrado."]
    assert claims("J'ai envoyé votre demande.", "fr") == ["J'ai envoyé votre demande."]
    assert claims("Votre dossier a été clôturé.", "fr") == ["Votre dossier a été clôturé."]
    assert claims("Ich habe Ihre Anfrage weitergeleitet.", "de") == ["Ich habe Ihre Anfrage weitergeleitet."]
    assert claims("Ihr Fall wurde abgeschlossen.", "de") == ["Ihr Fall wurde abgeschlossen."]
    assert claims("Enviei o seu pedido.", "pt") == ["Enviei o seu pedido."]
    assert claims("O seu caso foi encerrado.", "pt") == ["O seu caso foi encerrado."]


def test_the_routines_instructions_translated_are_not_claims() -> None:
    # What the BAA routine says, as a translator would put it: requests, not reports.
    assert claims("Para obtener un BAA para nuestra API, envíe un correo a baa@openai.com.", "es") == []
    assert claims("Notre équipe vous répondra sous 1 à 2 jours ouvrés.", "fr") == []
    assert claims("Für einen BAA für unsere API schreiben Sie bitte an baa@openai.com.", "de") == []
    assert claims("A nossa equipa responderá dentro de 1 a 2 dias úteis.", "pt") == []


def test_a_state_is_a_claim_only_when_it_is_said_to_be_so_now_as_in_english() -> None:
    # "The process is usually completed within a few business days" reports nothing done.
    assert claims("Der Vorgang ist in der Regel innerhalb weniger Werktage abgeschlossen.", "de") == []
    assert claims("El proceso suele estar completado en pocos días hábiles.", "es") == []
    assert claims("Der Fall ist jetzt abgeschlossen.", "de") == ["Der Fall ist jetzt abgeschlossen."]


def test_everyday_words_that_end_like_participles_are_not_claims() -> None:
    assert claims("Por supuesto. ¿En qué más puedo ayudarle?", "es") == []
    assert claims("Bien sûr. Puis-je vous aider pour autre chose ?", "fr") == []
    assert claims("Claro. Posso ajudar com mais alguma coisa?", "pt") == []
