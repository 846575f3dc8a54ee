"""Whom staff call when images cannot be fetched: the `[contacts]` settings group.

Shown on the fallback procedure's page (`/ui/fallback`), which anyone can open without a key:
so these are the practice's own work contacts, never a patient's. An unset contact is shown
as "not set" with the setting that fills it, never as a placeholder that looks like data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Contact(BaseModel):
    """One person or service to call."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Who: a person, a company or a service desk.")
    phone: str = Field("", description="Number to call, as it should be dialled.")
    email: str = Field("", description="Address to write to, if they take e-mail.")
    hours: str = Field("", description='When they answer, e.g. "Mon-Fri 8:00-18:00".')
    notes: str = Field("", description="Anything else to say or have ready (a contract number).")

    @property
    def is_set(self) -> bool:
        return bool(self.name.strip() or self.phone.strip() or self.email.strip())


class Contacts(BaseModel):
    """The three contacts of the fallback procedure."""

    model_config = ConfigDict(extra="forbid")

    it: Contact = Field(
        default_factory=Contact, description="The practice's IT contact: the gateway, network."
    )
    pacs_vendor: Contact = Field(
        default_factory=Contact, description="Support of the PACS vendor: the imaging system."
    )
    radiology: Contact = Field(
        default_factory=Contact,
        description="The radiology provider: images or reports needed today, outside images.",
    )

    def listed(self) -> list[tuple[str, str, Contact]]:
        """(setting key, what they are for, the contact) in the order the page lists them."""
        return [
            ("it", "Practice IT", self.it),
            ("pacs_vendor", "PACS vendor support", self.pacs_vendor),
            ("radiology", "Radiology provider", self.radiology),
        ]
