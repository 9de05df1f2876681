// Length units: molecules are in Å everywhere in qdf; cube files and the density's
// atomic-orbital exponents are in bohr.

/// 1 bohr in Å (CODATA 2018 bohr radius 0.529177210903 Å).
public let angstromPerBohr = 0.529177210903
/// 1 Å in bohr.
public let bohrPerAngstrom = 1 / 0.529177210903
