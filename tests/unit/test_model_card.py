"""A model card's identity and its file format: the version id is a content hash that
registries already hold, so neither may change under the card's Python types."""

import json
from datetime import date

from sentiment_assets.lib.models.model_bundle import CARD_FILE, ModelCard, read_card, write_card

# The ids these cards have: existing registries hold ids computed this way (the MLflow tag
# `bundle_version`), so a retrain on unchanged inputs must find them again. Pinned before
# the card's months became dates; a change of types must not change them.
PLAIN_ID = "tfidf_logreg-2024-03-75b2aad29d"
ADJUSTED_ID = "embedding_logreg-2024-03-b4983901ee"


def plain_card() -> ModelCard:
    return ModelCard(
        family="tfidf_logreg",
        trained_through=date(2024, 3, 1),
        window_start=date(2023, 12, 1),
        params={"C": 1.0, "max_features": 5000},
        data_fingerprint="0123456789abcdef",
    )


def adjusted_card() -> ModelCard:
    """Every optional field set, the ones outside the identity (metrics, calibration) too."""
    return ModelCard(
        family="embedding_logreg",
        trained_through=date(2024, 3, 1),
        window_start=date(2024, 1, 1),
        params={"C": 0.5},
        data_fingerprint="fedcba9876543210",
        encoder="all-MiniLM-L6-v2",
        encoder_fingerprint="minilm-fp32",
        metrics={"validation": {"accuracy": 0.8}},
        calibration={"temperature": 1.2},
        prior_adjustment={
            "parent_version": "3",
            "month": "2024-04-01",
            "training_prior": 0.5,
            "prior": 0.6,
        },
        code="abcdef012345",
    )


def test_version_ids_are_the_ones_existing_registries_hold():
    assert plain_card().version == PLAIN_ID
    assert adjusted_card().version == ADJUSTED_ID


def test_a_card_file_in_the_iso_string_format_loads_with_dates(tmp_path):
    # As write_card wrote it before cards held dates: months as ISO strings.
    (tmp_path / CARD_FILE).write_text(
        json.dumps(
            {
                "family": "tfidf_logreg",
                "trained_through": "2024-03-01",
                "window_start": "2023-12-01",
                "params": {"C": 1.0, "max_features": 5000},
                "data_fingerprint": "0123456789abcdef",
                "encoder": None,
                "encoder_fingerprint": None,
                "metrics": {},
                "calibration": {},
                "prior_adjustment": {},
                "code": "",
            },
            indent=2,
            sort_keys=True,
        )
    )
    card = read_card(tmp_path)
    assert (card.trained_through, card.window_start) == (date(2024, 3, 1), date(2023, 12, 1))
    assert card == plain_card()
    assert card.version == PLAIN_ID


def test_a_written_card_keeps_months_as_iso_strings_and_reads_back_equal(tmp_path):
    write_card(tmp_path, adjusted_card())
    on_disk = json.loads((tmp_path / CARD_FILE).read_text())
    assert (on_disk["trained_through"], on_disk["window_start"]) == ("2024-03-01", "2024-01-01")
    assert read_card(tmp_path) == adjusted_card()
