"""The complete schema: every domain's tables on one ``metadata`` (Alembic and the tests read
it). Importing this module imports every ``<domain>/models.py``; nothing in the service
imports it, each module imports the models it uses."""

from __future__ import annotations

from sqlmodel import SQLModel

from warranty.attention import models as attention  # noqa: F401
from warranty.auth import models as auth  # noqa: F401
from warranty.catalog import models as catalog  # noqa: F401
from warranty.claims import models as claims  # noqa: F401
from warranty.contracts import models as contracts  # noqa: F401
from warranty.customers import models as customers  # noqa: F401
from warranty.db import revisions  # noqa: F401
from warranty.experiment import models as experiment  # noqa: F401
from warranty.exports import models as exports  # noqa: F401
from warranty.notify import models as notify  # noqa: F401
from warranty.orders import models as orders  # noqa: F401
from warranty.payments import models as payments  # noqa: F401
from warranty.periods import models as periods  # noqa: F401
from warranty.pricing import models as pricing  # noqa: F401
from warranty.rollups import models as rollups  # noqa: F401
from warranty.staff import models as staff  # noqa: F401

metadata = SQLModel.metadata
