"""Staff: «Установки» — each cooperative's installation wizard on its own domain: where it is, the council's
progress, every regulation's PDF (J9)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.params import FromPath

from portal.connection.forms import shown_domain
from portal.cooperatives.tables import Cooperative
from portal.installation import council, service
from portal.installation.tables import Installation
from portal.staff.guards import staff_guard
from portal.web import PageError, render

STATUS_LABELS = {service.KEY: "ждёт ключа установки", service.COUNCIL: "вводится совет",
                 service.INVITED: "совет подписывает положения", service.ACTIVE: "кооператив действует"}


class StaffInstallationsController(Controller):
    path = "/staff/installations"
    guards = [staff_guard]

    @get("/")
    async def index(self, request: Request) -> object:
        rows = await Installation.select(
            Installation.all_columns(), Installation.cooperative.name_short, Installation.cooperative.domain,
        ).order_by(Installation.id, ascending=False).limit(500)
        for row in rows:
            row["status_label"] = STATUS_LABELS.get(row["status"], row["status"])
            row["domain_shown"] = shown_domain(row["cooperative.domain"])
        return render(request, "installation/staff_list.html", {"rows": rows})

    @get("/{installation_id:int}")
    async def detail(self, request: Request, installation_id: FromPath[int]) -> object:
        installation = await service.installation_by_id(installation_id)
        if installation is None:
            raise PageError(status_code=404, detail="Такой установки нет.")
        cooperative = await Cooperative.select().where(Cooperative.id == installation["cooperative"]).first()
        documents = await council.latest_documents(installation_id)
        regulations = [(template_id, title, documents.get(template_id))
                       for template_id, title in zip(service.REGULATIONS, service.REGULATION_TITLES)]
        return render(request, "installation/staff_detail.html", {
            "installation": installation, "cooperative": cooperative, "council": await service.council_of(installation_id),
            "regulations": regulations, "status_label": STATUS_LABELS.get(installation["status"], ""),
            "domain_shown": shown_domain(cooperative["domain"]),
            "site_url": service.site_url(request.app.state.settings, cooperative["domain"])})
