#[timed_handler]
async fn login(form: Form) -> Result<Session, AuthError> {
    let user = users::find(&form.user).await?;
    user.verify(&form.password)?;
    Ok(Session::new(user))
}
