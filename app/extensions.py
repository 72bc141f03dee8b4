"""Extension objects, created bare here and bound to the app in the factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for the typed models."""


# expire_on_commit=False: views serialise objects after committing them.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
# The models' base class: db.Model is made at run time, so mypy is shown the Base it extends.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
server_session = Session()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
