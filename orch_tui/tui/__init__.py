"""The Textual front end: screens and widgets that observe the core through RunModel."""
