"""The baseline of bench/http.py: a bare Litestar app, nothing of the portal.

    .venv/bin/granian --interface asgi --workers 2 --access-log bench.bare_app:app   # from the repository root

`/` renders one Jinja2 page (a layout and a page extending it, about the size of the portal's home page)
through Litestar's template engine; `/text` answers plain text. No database, sessions, CSRF or extra headers.
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape
from litestar import Litestar, MediaType, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

BASE = """<!doctype html>
<html lang="ru">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{% block title %}{{ site_name }}{% endblock %} — Кооперативная экономика</title>
  <link rel="stylesheet" href="/static/site.css">
</head>
<body>
  <header class="site-header">
    <a class="brand" href="/"><strong>{{ site_name }}</strong><small>оператор платформы</small></a>
    <nav aria-label="Основное меню">
      {% for href, label in menu %}
      <a href="{{ href }}"{% if href == path %} aria-current="page"{% endif %}>{{ label }}</a>
      {% endfor %}
    </nav>
  </header>
  <main id="main">{% block content %}{% endblock %}</main>
  <footer class="site-footer"><p>{{ site_name }} · <a href="/docs/">Документация</a></p></footer>
</body>
</html>
"""

PAGE = """{% extends "base.html" %}
{% block title %}Главная{% endblock %}
{% block content %}
<section class="hero">
  <h1>Подключение потребительского кооператива к платформе</h1>
  <p class="lead">Платформа «Кооперативная экономика» даёт кооперативу сайт, учёт пайщиков, документы с
  простой электронной подписью и приём взносов. {{ site_name }} подключает кооперативы и сопровождает их.</p>
  <p><a class="button" href="/connect">Подать заявку</a> <a class="button secondary" href="/docs/">Документация</a></p>
</section>
<section>
  <h2>Как проходит подключение</h2>
  <ol class="steps">
    {% for step in steps %}
    <li><h3>{{ loop.index }}. {{ step.title }}</h3><p>{{ step.text }}</p></li>
    {% endfor %}
  </ol>
</section>
<section>
  <h2>Стоимость</h2>
  <p>Базовый пакет — {{ "{:,}".format(base_fee).replace(",", " ") }} ₽ в месяц, в него входят
  {{ quota }} операций каждого вида. Сверх квоты операции оплачиваются по тарифу.</p>
  <table>
    <tr><th>что</th><th>сколько</th></tr>
    {% for name, value in prices %}
    <tr><td>{{ name }}</td><td>{{ value }}</td></tr>
    {% endfor %}
  </table>
</section>
<section>
  <h2>Вопросы</h2>
  {% for question, answer in questions %}
  <details><summary>{{ question }}</summary><p>{{ answer }}</p></details>
  {% endfor %}
</section>
{% endblock %}
"""

STEPS = [
    ("Заявка", "Кооператив заполняет короткую форму на сайте: название, ИНН, контакты и домен."),
    ("Регистрация", "Сотрудник проверяет заявку и присылает ссылку для регистрации представителя."),
    ("Вступление", "Представитель заполняет заявление и подписывает пакет документов на экране."),
    ("Договор", "Подписывается договор о подключении; оплата вступительного и паевого взносов."),
    ("Домен", "Кооператив направляет свой домен на сервер платформы (A-запись)."),
    ("Установка", "Платформа разворачивается на домене кооператива, пайщики начинают работу."),
]
PRICES = [("Базовый пакет", "1 500 ₽ в месяц"), ("Регистрация сверх квоты", "2 AXON"),
          ("Пакет документов сверх квоты", "1 AXON"), ("Курс", "10 ₽ за 1 AXON")]
QUESTIONS = [
    ("Кто может подключиться?", "Потребительские кооперативы, которые вступают в ПК «ВОСХОД» как пайщики-организации."),
    ("Нужна ли электронная подпись?", "Нет: документы подписываются простой электронной подписью — ключом пайщика "
     "и подписью от руки на экране."),
    ("Сколько длится подключение?", "Обычно одну-две недели: от заявки до установки на домене кооператива."),
    ("Что делать, если ключ потерян?", "Заменить его по ссылке на почту; прежний ключ перестаёт действовать."),
    ("Можно ли разместить платформу у себя?", "Да, на своём сервере; оператор остаётся источником обновлений."),
    ("Как проверить подписанный документ?", "Загрузить PDF на страницу проверки или найти документ по его хешу."),
]
MENU = [("/", "Главная"), ("/docs/", "Документация"), ("/connect", "Подключение"), ("/login", "Войти")]


@get("/", media_type=MediaType.HTML)
async def page() -> Template:
    context = {
        "site_name": "ПК «ВОСХОД»",
        "menu": MENU,
        "path": "/",
        "steps": [{"title": t, "text": x} for t, x in STEPS],
        "prices": PRICES,
        "questions": QUESTIONS,
        "base_fee": 1500,
        "quota": 50,
    }
    return Template(template_name="index.html", context=context)


@get("/text", media_type=MediaType.TEXT)
async def text() -> str:
    return "ok"


def create_app() -> Litestar:
    env = Environment(loader=DictLoader({"base.html": BASE, "index.html": PAGE}),
                      autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    return Litestar(route_handlers=[page, text],
                    template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(env)))


app = create_app()
