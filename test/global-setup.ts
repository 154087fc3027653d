// Suite-wide setup: nothing yet beyond what individual test files start themselves.
export default function setup(): void {}
