"""Everything a client is configured with, read from the arguments, the environment and `.env`
in one place: credentials, addresses, time limits and the retry policy."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from zoneinfo import ZoneInfo

from dotenv import dotenv_values, find_dotenv

from ..dates import TEHRAN
from ..errors import InputError
from ..wsdl import WSDL_PATH
from .safety import Secret, remember_url_password, shown_url

REAL_WSDL = "http://payamak-service.ir/SendService.svc?wsdl"
ENVIRONMENT = ("PAYAMAK_USERNAME", "PAYAMAK_PASSWORD", "PAYAMAK_WSDL", "PAYAMAK_ENDPOINT")


@dataclass(frozen=True, repr=False)
class Settings:
    """A client's configuration. The password is a `Secret`: no repr, log or error shows it.

    `timeout` bounds one attempt, from connecting to the answer's last byte (not only each read);
    `call_budget` bounds a whole call with its retries (`timeout` x `read_attempts` unless given;
    the command line gives 2 x `timeout`, as a person is waiting).
    `service_zone` is the zone the service writes times without an offset in (Tehran).
    """

    username: str
    password: Secret = field(repr=False)
    wsdl: str = REAL_WSDL
    endpoint: str | None = None
    timeout: float = 30.0
    call_budget: float | None = None
    read_attempts: int = 4
    max_retry_wait: float = 5.0
    cache_wsdl: bool = True
    service_zone: ZoneInfo = TEHRAN

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown |= {"wsdl": shown_url(self.wsdl), "endpoint": shown_url(self.endpoint)}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        if not isinstance(self.password, Secret):
            object.__setattr__(self, "password", Secret(self.password))
        if not isinstance(self.password.reveal(), str) or not isinstance(self.username, str):
            raise InputError("The user name and the password must be texts.", "نام کاربری و رمز عبور باید متن باشند")
        for address in (self.wsdl, self.endpoint):  # http://user:pass@host/: scrubbed from errors and logs too
            remember_url_password(address)
        if self.wsdl == "bundled":
            object.__setattr__(self, "wsdl", str(WSDL_PATH))
        if self.call_budget is None and _seconds(self.timeout) and isinstance(self.read_attempts, int):
            object.__setattr__(self, "call_budget", self.timeout * max(self.read_attempts, 1))
        for name in ("timeout", "call_budget", "max_retry_wait"):
            value = getattr(self, name)
            if not _seconds(value):
                raise InputError(
                    f"{name} must be a number of seconds above 0, not {value!r}.",
                    f"مقدار {name} باید عددی بزرگ تر از صفر (ثانیه) باشد",
                )
        attempts = self.read_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
            raise InputError(
                f"read_attempts must be a whole number from 1 to 20, not {attempts!r}.", "تعداد تلاش نامعتبر است"
            )

    @classmethod
    def load(
        cls,
        username: str | None = None,
        password: str | None = None,
        *,
        wsdl: str | None = None,
        endpoint: str | None = None,
        **options,
    ) -> Settings:
        """Arguments first, then the environment, then a `.env` file in the working directory."""
        password = Secret.of(password or None)  # first, so that no frame below holds it bare
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"Unknown client options: {', '.join(unknown)}.", "گزینه ناشناخته برای کلاینت")
        found = _configured()
        username = username or found.get("PAYAMAK_USERNAME")
        password = password or found.get("PAYAMAK_PASSWORD")
        if not username or not password:
            raise InputError(
                "No credentials: pass username= and password=, or set PAYAMAK_USERNAME and "
                "PAYAMAK_PASSWORD (in the environment or a .env file).",
                "نام کاربری و رمز عبور تعیین نشده است",
            )
        return cls(
            username,
            password,
            wsdl=wsdl or found.get("PAYAMAK_WSDL") or REAL_WSDL,
            endpoint=endpoint or found.get("PAYAMAK_ENDPOINT") or None,
            **{k: v for k, v in options.items() if v is not None},
        )


VARIABLES = ("PAYAMAK_USERNAME", "PAYAMAK_PASSWORD", "PAYAMAK_WSDL", "PAYAMAK_ENDPOINT")


def _configured() -> dict:
    """The settings' own variables, the environment over a `.env` file, the password as a Secret.
    Only these: the caller's frames (shown in a traceback's locals) hold no other secret of the
    environment, such as another account's password or a mail login."""
    file = dotenv_values(find_dotenv(usecwd=True))
    found = {name: os.environ[name] if name in os.environ else file.get(name) for name in VARIABLES}
    found["PAYAMAK_PASSWORD"] = Secret.of(found["PAYAMAK_PASSWORD"] or None)
    return found


def _seconds(value) -> bool:
    """Whether `value` is a finite number of seconds above zero."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
