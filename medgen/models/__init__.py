"""Model families; see medgen.registry for the name -> implementation table."""
