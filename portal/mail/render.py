"""E-mail texts from templates: `portal/templates/mail/*.txt`, plain text (no HTML escaping).

A template has two blocks, the subject (one line) and the body:

    {% block subject %}Заявка № {{ request_id }} принята{% endblock %}
    {% block body %}
    Здравствуйте, {{ request.contact_name }}!
    …
    {{ operator }}
    {% endblock %}

Every template also sees `operator` (the operator's short name from the settings) and `base_url`.
An unknown variable is an error, not an empty string: a mail with a hole in it is not sent.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from portal.clock import datetime_ru
from portal.requisites import domain_display
from portal.settings import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=False,  # plain text: «Кооператив "Заря" & Ко» stays as typed
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(datetime_msk=datetime_ru, domain_display=domain_display)  # the texts say «МСК» themselves


def render_mail(settings: Settings, template_name: str, context: dict) -> tuple[str, str]:
    """The subject (whitespace collapsed to one line) and the body (ending with one newline)."""
    template = _env.get_template(template_name)
    missing = {"subject", "body"} - set(template.blocks)
    if missing:
        raise ValueError(f"{template_name}: no block {', '.join(sorted(missing))}")
    ctx = template.new_context({"operator": settings.operator.name_short, "base_url": settings.base_url,
                                **context})
    subject = " ".join("".join(template.blocks["subject"](ctx)).split())
    body = "".join(template.blocks["body"](ctx)).strip("\n") + "\n"
    return subject, body
