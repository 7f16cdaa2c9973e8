"""Model families (families/: the protocol, the registry, the built-in three): parameters,
fitting a window, fine-tuning, tuning, bundles on disk, the behaviour suite."""
