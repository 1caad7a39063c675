//! `terraform-provider-toyfs`: a toy provider built on tfplugin that stores objects in a local
//! JSON file. It exercises the framework end to end in the tests with real Terraform.

mod provider;

fn main() -> std::process::ExitCode {
    tfplugin::run(provider::ToyFs)
}
