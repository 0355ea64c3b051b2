// Command manager is the recbuf operator: a controller-runtime manager that
// reconciles Records into buffer Deployments and Services, and aggregates
// the buffer processes' counter reports from NATS into the Records' status.
//
// It starts and keeps running while NATS is unreachable: the Records'
// NATSConnected and Reporting conditions then say so, and reports are
// picked up once the connection comes. Flags: `manager -help`.
package main
