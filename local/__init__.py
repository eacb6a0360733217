"""The local stack (``make dev``). Importing it selects the app it serves: ``KIT_APP_PATH`` if
set, else cdk.json's ``kit:app`` (``local.config.select_app``)."""

from local.config import select_app

select_app()
