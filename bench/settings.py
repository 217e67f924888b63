"""Settings for bench/api.py only: vrm's own settings with the benchmark's app and URLconf.

Selected through DJANGO_SETTINGS_MODULE=bench.settings by bench/api.py when it starts gunicorn;
nothing else imports it, so the baseline endpoints and their table never exist outside a
benchmark run.
"""

from vrm.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
# seed_scale lives in devtools, which production settings leave out.
if "devtools" not in INSTALLED_APPS:
    INSTALLED_APPS.append("devtools")
ROOT_URLCONF = "bench.urls"
