from litestar import Controller, Request, get

from portal.mail.service import recent_messages
from portal.web import render


class DevMailController(Controller):
    """Outgoing mail readable in the browser; registered only in dev."""

    path = "/dev/mail"

    @get("/")
    async def outbox(self, request: Request) -> object:
        return render(request, "dev/mail.html", {"messages": await recent_messages()})
