"""The dashboard's routes, by area: `statistics` (figures, work report, series, approvals), `regions` (path,
search, who am I, a village's summary) and `page` (the web page, its files and the public notices)."""

from services.dashboard.routes.page import router as page
from services.dashboard.routes.regions import router as regions
from services.dashboard.routes.statistics import router as statistics

ROUTERS = (statistics, regions, page)
