"""medagent: build, serve and score EHR agents on FHIR."""

__version__ = "0.1.0"
