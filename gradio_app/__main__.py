"""`python -m gradio_app`: serve the champion on SENTIMENT_APP_HOST:SENTIMENT_APP_PORT."""

from __future__ import annotations

import logging
import sys

from gradio_app.config import ConfigError, load_config


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if config.exposed_without_auth:
        print(
            f"warning: listening on {config.host} without authentication; set "
            "SENTIMENT_APP_USER and SENTIMENT_APP_PASSWORD to require a login",
            file=sys.stderr,
        )
    from gradio_app.server import serve

    print(f"Sentiment app: http://{config.host}:{config.port}  (metrics at /metrics)", flush=True)
    serve(config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
