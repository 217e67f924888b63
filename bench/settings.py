"""Settings for bench/api.py only: vrm's own settings with the benchmark's URLconf.

Selected through DJANGO_SETTINGS_MODULE=bench.settings by bench/api.py when it starts gunicorn;
nothing else imports it, so the baseline endpoint never exists outside a benchmark run.
"""

from vrm.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
