from litestar import Controller, Request, get

from portal.mail.service import visible_body
from portal.mail.tables import OutboxMessage
from portal.web import render


class DevMailController(Controller):
    """Outgoing mail readable in the browser; registered only in dev."""

    path = "/dev/mail"

    @get("/")
    async def outbox(self, request: Request) -> object:
        rows = await OutboxMessage.select().order_by(OutboxMessage.id, ascending=False).limit(200)
        messages = [{**row, "body_text": visible_body(row["body_text"])} for row in rows]
        return render(request, "dev/mail.html", {"messages": messages})
