from __future__ import annotations

from tests.e2e.pool_apps.visits import visits

urlpatterns = [visits()]
