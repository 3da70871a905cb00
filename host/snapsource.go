package host

// SnapshotSource is where a Hall reads its snapshot inputs (rules,
// policies, configuration, enrollments) from.
//
// placeholder; defined by the snapshot-source change
type SnapshotSource interface{}
