"""A version's month is a date in Python and an ISO string in its MLflow tag."""

from datetime import date

from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from sentiment_assets.lib.models.model_bundle import ModelCard
from sentiment_assets.lib.versions.registry import VersionInfo, register_bundle


class RecordingClient:
    """The MlflowClient calls register_bundle makes, answered from memory."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str) -> None:
        pass

    def create_registered_model(self, name: str, description: str) -> None:
        pass

    def create_model_version(
        self, name: str, source: str, run_id: str, tags: dict[str, str]
    ) -> ModelVersion:
        self.tags = tags
        return model_version(tags, source=source, run_id=run_id)


def model_version(tags: dict[str, str], **fields: str) -> ModelVersion:
    return ModelVersion(
        "tweet-sentiment",
        "1",
        0,
        tags=[ModelVersionTag(k, v) for k, v in tags.items()],
        **fields,
    )


def test_registering_tags_the_month_as_an_iso_string_and_reads_it_back_as_a_date(tmp_path):
    card = ModelCard("tfidf_logreg", date(2024, 3, 1), date(2024, 1, 1), {}, "fingerprint")
    client = RecordingClient()
    info = register_bundle(client, "run", "file:///artifacts", tmp_path, card)
    assert client.tags["trained_through"] == "2024-03-01"
    assert info.trained_through == date(2024, 3, 1)


def test_a_version_without_the_month_tag_has_no_month():
    assert VersionInfo.of(model_version({"family": "tfidf_logreg"})).trained_through is None


def test_a_version_whose_month_tag_was_edited_into_nonsense_is_listed_without_a_month():
    # A tag edited by hand in the MLflow UI must not make every listing of the registry fail.
    info = VersionInfo.of(model_version({"family": "tfidf_logreg", "trained_through": "March"}))
    assert info.trained_through is None and info.family == "tfidf_logreg"
