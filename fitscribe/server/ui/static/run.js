// Run page.
