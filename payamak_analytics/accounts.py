"""Many panel accounts from one TOML file, for loads that cover an agency's accounts at once.

The file names each account, its user name and, where it is not the real service, its
address; it never holds a password. A password comes from the environment (the variable
named by `password_env`, by default PAYAMAK_PASSWORD_<NAME>) or from dlt's secrets
(`payamak.accounts.<name>.password` in .dlt/secrets.toml), so the file can be shared and
committed. Example:

    [accounts.shop]
    username = "shop-user"

    [accounts.clinic]
    username = "clinic"
    endpoint = "http://panel.example/SendService.svc"
    wsdl = "bundled"
    lines = ["10002188"]
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .client import PanelClient
from .errors import CredentialsError, InputError

ACCOUNT_KEYS = ("username", "wsdl", "endpoint", "lines", "password_env")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass(frozen=True)
class Account:
    """One panel account of the file: everything needed to reach it except its password."""

    name: str
    username: str
    wsdl: str | None = None
    endpoint: str | None = None
    lines: tuple[str, ...] = ()
    password_env: str = ""

    @property
    def password_variable(self) -> str:
        return self.password_env or "PAYAMAK_PASSWORD_" + re.sub(r"\W", "_", self.name).upper()

    def client(self, **options) -> PanelClient:
        """A client of this account; the password is looked up now and held only by the client."""
        return PanelClient(self.username, _password(self), wsdl=self.wsdl, endpoint=self.endpoint, **options)


def _password(account: Account) -> str:
    found = os.environ.get(account.password_variable)
    if found:
        return found
    secret_key = f"payamak.accounts.{account.name}.password"
    try:
        import dlt  # optional: dlt's secrets.toml is one more place a password may live
    except ImportError:
        dlt = None
    found = dlt.secrets.get(secret_key) if dlt is not None else None
    if found:
        return str(found)
    raise CredentialsError(
        f"No password for account {account.name!r}: set the environment variable {account.password_variable}"
        f" or {secret_key} in .dlt/secrets.toml.",
        f"رمز عبور حساب {account.name} تعیین نشده است",
    )


def load_accounts(path: str | Path) -> list[Account]:
    """The accounts of a TOML file, checked: InputError saying what to fix otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"Cannot read the accounts file {path}: {error.__class__.__name__}. Give the path of a UTF-8 TOML file.",
            "فایل حساب ها خوانده نشد",
        ) from None
    return parse_accounts(text, str(path))


def parse_accounts(text: str, where: str = "the accounts file") -> list[Account]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{where} is not valid TOML: {error}.", "فایل حساب ها TOML معتبر نیست") from None
    tables = document.get("accounts")
    if not isinstance(tables, dict) or not tables:
        raise InputError(
            f'{where} lists no accounts: add a table [accounts.NAME] with username = "..." for each account.',
            "هیچ حسابی در فایل نیامده است",
        )
    accounts = [_account(name, table, where) for name, table in tables.items()]
    seen: dict[tuple, str] = {}
    for account in accounts:
        key = (account.username, account.endpoint, account.wsdl)
        if key in seen:
            raise InputError(
                f"{where}: accounts {seen[key]!r} and {account.name!r} are the same panel account; keep one.",
                "یک حساب دو بار آمده است",
            )
        seen[key] = account.name
    return accounts


def _account(name: str, table, where: str) -> Account:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{where}: the account name {name!r} must be letters, digits, '-' or '_' (at most 63).",
            "نام حساب نامعتبر است",
        )
    if not isinstance(table, dict):
        raise InputError(f"{where}: accounts.{name} must be a table.", "تعریف حساب نامعتبر است")
    if "password" in table:
        raise InputError(
            f"{where}: accounts.{name} holds a password; remove it. Passwords come from the environment "
            f"(PAYAMAK_PASSWORD_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}) or dlt's secrets, never this file.",
            "رمز عبور نباید در فایل حساب ها باشد",
        )
    unknown = sorted(set(table) - set(ACCOUNT_KEYS))
    if unknown:
        raise InputError(
            f"{where}: accounts.{name} has unknown keys {unknown}; the keys are {', '.join(ACCOUNT_KEYS)}.",
            "کلید ناشناخته در تعریف حساب",
        )
    strings = {key: table.get(key) for key in ("username", "wsdl", "endpoint", "password_env")}
    for key, value in strings.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InputError(f"{where}: accounts.{name}.{key} must be a non-empty string.", "مقدار نامعتبر")
    if strings["username"] is None:
        raise InputError(f"{where}: accounts.{name} has no username.", "نام کاربری حساب نیامده است")
    lines = table.get("lines", [])
    if not isinstance(lines, list) or not all(isinstance(line, (str, int)) for line in lines):
        raise InputError(f"{where}: accounts.{name}.lines must be a list of line numbers.", "خطوط نامعتبر")
    return Account(
        name=name,
        username=strings["username"],
        wsdl=strings["wsdl"],
        endpoint=strings["endpoint"],
        lines=tuple(str(line) for line in lines),
        password_env=strings["password_env"] or "",
    )
