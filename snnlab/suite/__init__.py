"""The suite: notebook discovery and execution (:mod:`.notebooks`), the report (:mod:`.report`), the CLI (:mod:`.cli`)."""
