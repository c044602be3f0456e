package grconnect

// Version is this SDK's version. It moves in step with grconnect's releases: SDK
// 0.3.x speaks the API of grconnect 0.3.x.
const Version = "0.3.0"
