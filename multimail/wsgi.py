from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from multimail.chunked import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multimail.settings")

# Chunked request bodies get their length before Django reads them (multimail.chunked).
application = ChunkedBodyMiddleware(get_wsgi_application())
