package host

// ChangeEnrollRecord is the kind of the change that seals a routing-only
// record enrolled PyHall's way (EnrollRecord): its artifact_hash was
// PyHall's record hash, verified, and no module is enrolled with it.
const ChangeEnrollRecord = "enroll_record"
