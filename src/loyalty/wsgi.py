"""The WSGI application `loyalty serve` runs (gunicorn loads it in each worker process).

Any WSGI server can run it too: `gunicorn loyalty.wsgi:application`. The database is the one
`LOYALTY_DATABASE_URL` names, as for every `loyalty` command.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")

application = get_wsgi_application()
